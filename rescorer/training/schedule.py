"""Learning-rate decay on a validation plateau, and early stopping.

Examples:
    >>> schedule = PlateauSchedule(lr=1.0, decay=4.0, patience=2)
    >>> [schedule.update(ppl) for ppl in (100.0, 90.0, 95.0, 91.0)]
    [True, True, False, False]
    >>> schedule.lr, schedule.best_epoch, schedule.exhausted
    (0.0625, 2, True)
"""
import math
from typing import Any, Dict


class PlateauSchedule:
    """Divide the rate by ``decay`` after each epoch whose valid PPL is not a new best.

    Args:
      lr:
        Initial learning rate.
      decay:
        Divisor applied after an epoch without improvement (> 1).
      patience:
        ``exhausted`` turns True after this many such epochs in a row.
    """

    def __init__(self, lr: float, decay: float, patience: int) -> None:
        self.lr = lr
        self.decay = decay
        self.patience = patience
        self.best_ppl = math.inf
        self.best_epoch = 0
        self.epochs = 0
        self.bad_epochs = 0

    def update(self, valid_ppl: float) -> bool:
        """Record one epoch's validation PPL; True if it is the best so far."""
        self.epochs += 1
        if valid_ppl < self.best_ppl:
            self.best_ppl, self.best_epoch, self.bad_epochs = valid_ppl, self.epochs, 0
            return True
        self.bad_epochs += 1
        self.lr /= self.decay
        return False

    @property
    def exhausted(self) -> bool:
        """True when training should stop early."""
        return self.bad_epochs >= self.patience

    def state(self) -> Dict[str, Any]:
        """Plain-typed state for ``last.pt``."""
        keys = ("lr", "decay", "patience", "best_ppl", "best_epoch", "epochs", "bad_epochs")
        return {key: getattr(self, key) for key in keys}

    def load_state(self, state: Dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
