"""The user model's parts: item tower, sequence encoders (SASRec, HSTU), long-term pooling and
fusion, similarity heads (dot, Mixture-of-Logits)."""
