"""Git sync of the journal: agents on several clones and machines share one conversation."""
