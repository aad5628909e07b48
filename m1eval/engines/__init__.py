"""Generation backends behind one protocol (see ``base``)."""
