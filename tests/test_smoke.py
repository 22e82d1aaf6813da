def test_two_agents_exchange_a_message(pair):
    repo, alice, bob = pair
    sent = alice.json("send", "hello bob", "--to", "@bob")
    assert sent["message_id"].startswith("msg_")
    inbox = bob.json("inbox")
    assert [m["body"]["content"] for m in inbox["messages"]] == ["hello bob"]
    assert inbox["messages"][0]["agent_id"] == "alice"
