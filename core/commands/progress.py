"""Progress bars for long CLI work, fed by the library's ``progress(done, total, message)``."""

from __future__ import annotations


class ProgressBars:
    """One tqdm bar per stage (the text before ``:`` in the message, e.g. the model name)."""

    def __init__(self, *, quiet: bool = False):
        self.quiet = quiet
        self.bar = None
        self.label = None

    def __call__(self, done: int, total: int, message: str) -> None:
        if self.quiet:
            return
        from tqdm import tqdm  # here: the library's callers need not have it imported

        label = message.split(":")[0]
        if self.bar is None or label != self.label:
            self.close()
            self.bar = tqdm(total=total, desc=label, unit="step", leave=True)
            self.label = label
        self.bar.set_postfix_str(message.split(":", 1)[-1].strip())
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
