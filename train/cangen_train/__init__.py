"""cangen_train: sequential user models (SASRec, HSTU with long- and short-term interests) for
cangen, trained with PyTorch and NumPy only, evaluated by full ranking, exported as a cangen
model directory. Entry point: `python3 -m cangen_train --help`."""
