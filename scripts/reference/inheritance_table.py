#!/usr/bin/env python3
"""Inheritance quality from a selection's reference trainings (scripts/inheritance-experiment.sh):
per space, each reference's AP@0.5 with no training (inherited weights, batch norms recalibrated)
and after each epoch budget, against its AP after the whole (long) fine-tune, and Kendall's tau-b
of each budget's AP against that final AP, computed here independently of EdgeNAS's own ranking.

    python3 scripts/reference/inheritance_table.py --budgets 1,2,3,5 head=runs/x/head suggested=runs/x/sel

Each SPACE=DIR names a selection output folder; its reference records are DIR/cache/references/*.json
(`ReferenceRun`: validationAP per epoch, initialAP, inheritedShare). Prints Markdown.
"""
import argparse
import glob
import json
import math
import os


def kendall_tau_b(xs, ys):
    """Kendall's tau-b (ties in either ranking corrected for), as scipy.stats.kendalltau computes it."""
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            dx, dy = xs[i] - xs[j], ys[i] - ys[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denominator if denominator else float("nan")


def load(directory):
    runs = []
    for path in sorted(glob.glob(os.path.join(directory, "cache", "references", "*.json"))):
        with open(path) as file:
            runs.append(json.load(file))
    if not runs:
        raise SystemExit(f"error: no reference records in {directory}/cache/references (run the selection first)")
    return runs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", default="1,2,3,5", help="epoch budgets, comma separated")
    parser.add_argument("spaces", nargs="+", metavar="SPACE=DIR")
    arguments = parser.parse_args()
    budgets = [int(b) for b in arguments.budgets.split(",")]

    for item in arguments.spaces:
        name, _, directory = item.partition("=")
        runs = sorted(load(directory), key=lambda run: -run["validationAP"][-1])
        epochs = len(runs[0]["validationAP"])
        if any(b >= epochs for b in budgets):
            raise SystemExit(f"error: {name}: budgets {budgets} need a full training longer than its {epochs} epochs")
        final = [run["validationAP"][-1] for run in runs]
        columns = [("0 epochs", [run.get("initialAP", float("nan")) for run in runs])]
        columns += [(f"{b} epoch{'s' if b > 1 else ''}", [run["validationAP"][b - 1] for run in runs]) for b in budgets]
        print(f"### {name} space: {len(runs)} references, full fine-tune {epochs} epochs\n")
        print("| architecture | inherited | " + " | ".join(label for label, _ in columns) + f" | {epochs} epochs |")
        print("|---|---|" + "---|" * len(columns) + "---|")
        for index, run in enumerate(runs):
            share = run.get("inheritedShare")
            cells = [f"{values[index]:.3f}" for _, values in columns]
            print(f"| `{run['architecture']}` | {'-' if share is None else f'{100 * share:.0f} %'} | "
                  + " | ".join(cells) + f" | {final[index]:.3f} |")
        print("| **Kendall tau-b against the last epoch** | | "
              + " | ".join(f"**{kendall_tau_b(values, final):.3f}**" for _, values in columns) + " | |")
        seconds = [sum(run["epochSeconds"]) for run in runs]
        print(f"\nFull fine-tune: {sum(seconds) / len(seconds):.0f} s a reference on average "
              f"({sum(seconds) / 60:.1f} min for all {len(runs)}).\n")


if __name__ == "__main__":
    main()
