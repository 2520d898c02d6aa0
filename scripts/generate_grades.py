"""Write a synthetic grade file with a known noise level.

Example (50,000 grades, rank-3 structure, noise sd 5 grade points)::

    python scripts/generate_grades.py --students 1000 --courses 60 \
        --per-student 50 --noise 5 --out build/synthetic.json
    invoke build --data build/synthetic.json --out build/synthetic

A model that recovers the structure reaches a test RMSE near the noise level.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from coursedlc.synthetic import generate


def main(argv: list[str] | None = None) -> None:
    """Parse options and write the file."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=1000, help="number of students")
    p.add_argument("--courses", type=int, default=60, help="number of courses")
    p.add_argument("--per-student", type=int, default=50, help="grades per student")
    p.add_argument("--rank", type=int, default=3, help="rank of the interaction")
    p.add_argument("--noise", type=float, default=5.0, help="noise sd (grade points)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = p.parse_args(argv)

    grades = generate(
        students=args.students,
        courses=args.courses,
        per_student=args.per_student,
        rank=args.rank,
        noise=args.noise,
        seed=args.seed,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(grades, indent=1), encoding="utf-8")
    total = sum(len(v) for v in grades.values())
    print(f"wrote {total} grades of {args.students} students to {args.out}")


if __name__ == "__main__":
    main()
