"""The contract between services (message models, topics) and the plumbing every service uses."""
