"""Issue 28 reading: every 24-val-scene draw log in bench/results/ (cpu-2026-12-0[345]-prompt_sensitivity*val24*.log),
one row each: direct SR's GRID at 256x, CoZ null at 64x, oracle - null and null - wrong at 64x / 256x, and whether
all four differences have the words' order (signs only, no intervals). Run from a checkout of main."""
import glob, json, sys

rows = []
for f in sorted(glob.glob("bench/results/cpu-2026-12-0[345]-prompt_sensitivity*val24*.log")):
    grid = null64 = None
    d_on, d_nw = {}, {}
    for line in open(f, errors="replace"):
        if not line.startswith("[chain] {"):
            continue
        d = json.loads(line[8:])
        if "GRID direct / null / oracle / wrong" in d:
            if d["zoom"] == "256x":
                grid = d["GRID direct / null / oracle / wrong"][0]
            if d["zoom"] == "64x":
                null64 = d["null"]
        if "oracle - null" in d:
            d_on[d["zoom"]] = d["oracle - null"]
        if "null - wrong" in d:
            d_nw[d["zoom"]] = d["null - wrong"]
    if grid is None:
        continue
    order = all(x.get(z, 1) < 0 for x in (d_on, d_nw) for z in ("64x", "256x"))
    rows.append((f.split("/")[-1], grid, null64, d_on.get("64x"), d_on.get("256x"), d_nw.get("64x"), d_nw.get("256x"), order))
print("log | direct GRID 256x | null 64x | oracle-null 64x / 256x | null-wrong 64x / 256x | order")
for r in rows:
    print(f"{r[0]} | {r[1]:.3f} | {r[2]:.3f} | {r[3]:+.3f} / {r[4]:+.3f} | {r[5]:+.3f} / {r[6]:+.3f} | {'yes' if r[7] else 'no'}")
print(f"{len(rows)} draws; the words' order (signs) in {sum(r[7] for r in rows)}; direct GRID at 256x above 0.3 in "
      f"{sum(r[1] > 0.3 for r in rows)}; both the order and GRID at most 0.3 in {sum(r[7] and r[1] <= 0.3 for r in rows)}")
