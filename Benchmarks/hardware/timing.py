"""The timing rule of the Python peers, EdgeNAS's LatencyHarness with MeasurementPolicy.endToEnd:
warm-up, then repeat until the median moves by less than 1 % between checks (every 10 runs from
20 on), at most 500 runs or 20 s. Returns (median ms, interquartile range ms, runs)."""
import statistics
import time


def measure(body, warmup=5, minimum=20, maximum=500, seconds=20.0, window=10, tolerance=0.01):
    for _ in range(warmup):
        body()
    samples, previous, start = [], None, time.perf_counter()
    while True:
        begin = time.perf_counter()
        body()
        samples.append((time.perf_counter() - begin) * 1e3)
        if len(samples) >= maximum or time.perf_counter() - start >= seconds:
            break
        if len(samples) >= minimum and (len(samples) - minimum) % window == 0:
            median = statistics.median(samples)
            if previous is not None and abs(median - previous) / median < tolerance:
                break
            previous = median
    quartiles = statistics.quantiles(samples, n=4, method="inclusive")
    return statistics.median(samples), quartiles[2] - quartiles[0], len(samples)
