"""Security: ACLs and the authorizer (Kafka's StandardAuthorizer semantics)."""
