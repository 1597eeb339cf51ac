"""How the model's picture becomes the canvas: the fill modes' names, torch-free.

One tuple for the config, the registry and the geometry (models/canvas.py), so
the vocabulary can name them without importing torch.
"""

FILLS = ("native", "crop", "fit", "stretch", "mirror")
