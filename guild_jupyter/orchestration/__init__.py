"""Process orchestration: supervised runs, the queue, stop, retries and recovery."""
