"""Limits of the web server: one frozen dataclass so every limit is visible and testable in one place."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ferlab.errors import ConfigError

__all__ = ["ServeSettings"]

_MB = 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    """What one `ferlab serve` process accepts and how much work it takes on at once.

    Uploads above `max_upload_bytes` get 413; images whose header claims more than `max_pixels` get 413
    before any pixel is decoded; a request not answered within `request_timeout_s` gets 504; at most
    `max_concurrent_inferences` run at once, `queue_size` more wait, and the rest get 503 + Retry-After.
    """

    max_upload_bytes: int = 10 * _MB
    max_pixels: int = 40_000_000
    request_timeout_s: float = 30.0
    max_concurrent_inferences: int = 2
    queue_size: int = 16
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "max_concurrent_inferences"):
            if getattr(self, name) < 1:
                raise ConfigError(f"serve setting {name} must be >= 1, got {getattr(self, name)}")
        if self.queue_size < 0:
            raise ConfigError(f"serve setting queue_size must be >= 0, got {self.queue_size}")
        if not 0 < self.request_timeout_s < math.inf:  # NaN fails this too
            raise ConfigError("serve setting request_timeout_s must be a finite number > 0, "
                              f"got {self.request_timeout_s}")
        if self.retry_after_s < 1:
            raise ConfigError(f"serve setting retry_after_s must be >= 1, got {self.retry_after_s}")
