"""Docker through its engine: read networks and containers tied to netcore's kernel objects, follow
the engine's events, manage networks and containers, and keep Switchboard's bridges working beside
Docker's firewall. Talks to the engine with the Docker SDK over its socket."""
