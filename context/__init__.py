"""Context engine: turns an open document, a cursor and the repo into a prompt within a token budget."""
