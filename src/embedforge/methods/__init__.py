"""Self-supervised methods, one file each, registered in :data:`embedforge.registry.METHODS`.

A recipe names one in its ``method`` section (``method: {name: byol}``); in Python each is a
module built around the encoder it trains (see :mod:`embedforge.methods.method`).
"""

from embedforge.methods.barlow_twins import BarlowTwins
from embedforge.methods.byol import BYOL
from embedforge.methods.dino import DINO
from embedforge.methods.method import Method, MomentumMethod
from embedforge.methods.moco import MoCo
from embedforge.methods.simclr import SimCLR
from embedforge.methods.simsiam import SimSiam
from embedforge.methods.vicreg import VICReg

__all__ = [
    "BYOL",
    "DINO",
    "BarlowTwins",
    "Method",
    "MoCo",
    "MomentumMethod",
    "SimCLR",
    "SimSiam",
    "VICReg",
]
