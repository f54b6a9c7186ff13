"""Who owns a service or a path (catalog owner, CODEOWNERS/MAINTAINERS rules, on-call) and how
services depend on each other; imports ``knowledge`` only."""
