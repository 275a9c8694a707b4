"""Making the placed subject belong to the painting: colour and light, texture, boundary, and a harmony score."""
