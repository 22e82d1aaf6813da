from thrum_engine.cli.main import exit_with, main

exit_with(main())
