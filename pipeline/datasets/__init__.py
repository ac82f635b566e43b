"""Dataset readers: each turns an official release (or a partial copy of it) into tables."""
