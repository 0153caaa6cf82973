"""Training progress on a terminal: a live line per epoch (batches, loss, ETA), a summary line per epoch."""
import sys
import time


class Progress:
    def __init__(self, log=None):
        self.out = log or sys.stderr
        self.live = hasattr(self.out, "isatty") and self.out.isatty()
        self.last = 0.0

    def say(self, text):
        print(text, file=self.out, flush=True)

    def start_epoch(self, epoch, epochs, batches):
        self.epoch, self.epochs, self.batches, self.t0 = epoch, epochs, batches, time.time()

    def batch(self, done, loss):
        now = time.time()
        if now - self.last < (0.5 if self.live else 30.0) and done != self.batches:
            return
        self.last = now
        rate = (now - self.t0) / done
        eta = rate * (self.batches - done)
        bar = "#" * int(20 * done / self.batches)
        text = f"epoch {self.epoch + 1}/{self.epochs} [{bar:<20}] {done}/{self.batches} loss {loss:.4f} ETA {eta:.0f}s"
        if self.live:
            print("\r" + text, end="", file=self.out, flush=True)
        else:
            self.say(text)

    def end_epoch(self, epoch, loss, val, improved, state, budget):
        if self.live:
            print("\r", end="", file=self.out)
        left = f", {max(0.0, budget - state['trainSeconds']) / 60:.1f} min left in the time box" if budget else ""
        self.say(f"epoch {epoch + 1}: loss {loss:.4f}  val hr@10 {val['hr@10']:.4f} ndcg@10 {val['ndcg@10']:.4f}"
                 f"{'  (best)' if improved else ''}  {time.time() - self.t0:.1f}s{left}")
