"""Reactions: incoming video through pix2pix, mirror or feedback."""
