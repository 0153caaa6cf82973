"""The item tower: an id embedding plus the mean embedding of the item's side features."""
import torch
from torch import nn


class ItemTower(nn.Module):
    """x_i = E_id[i] + mean_{f in features(i)} E_feat[f]; row 0 is padding (all zero)."""

    def __init__(self, num_items, dim, item_features=None, num_features=0):
        super().__init__()
        self.id = nn.Embedding(num_items + 1, dim, padding_idx=0)
        nn.init.normal_(self.id.weight, std=0.02)
        with torch.no_grad():
            self.id.weight[0].zero_()
        if item_features is not None and num_features > 0:
            self.features = nn.Embedding(num_features + 1, dim, padding_idx=0)
            nn.init.normal_(self.features.weight, std=0.02)
            with torch.no_grad():
                self.features.weight[0].zero_()
            self.register_buffer("feature_ids", torch.as_tensor(item_features, dtype=torch.long), persistent=False)
        else:
            self.features = None

    def forward(self, ids):
        x = self.id(ids)
        if self.features is not None:
            feats = self.feature_ids[ids]  # (..., F)
            counts = (feats > 0).sum(-1, keepdim=True).clamp_min(1).to(x.dtype)
            x = x + self.features(feats).sum(-2) / counts
        return x

    def table(self):
        """Every item's embedding, (N + 1) x dim, row 0 = padding."""
        return self.forward(torch.arange(self.id.num_embeddings, device=self.id.weight.device))
