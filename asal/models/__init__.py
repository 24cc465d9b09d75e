"""Models: classifiers, the GAN and the autoencoder; and a digest of a network's weights for provenance."""

import hashlib

from torch import nn


def module_digest(module: nn.Module) -> str:
    """A short digest of a network's weights, to tell a checkpoint made with other networks."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
