"""`coresdk doctor`: the production security checklist run against a live deployment and its configuration."""
