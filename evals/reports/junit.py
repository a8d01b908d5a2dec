"""JUnit XML for CI: one testsuite per target, one testcase per case and repeat."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from brandloop.evals.runner import EvalRun


def build_junit(run: EvalRun) -> bytes:
    root = ET.Element("testsuites", name=f"{run.suite.name}@{run.suite.version}")
    for target in run.targets:
        results = run.for_target(target.name)
        failures = sum(not r.passed and r.status != "error" for r in results)
        errors = sum(r.status == "error" for r in results)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"{run.suite.name}[{target.name}]",
            tests=str(len(results)),
            failures=str(failures),
            errors=str(errors),
            time=f"{sum(r.latency_ms for r in results) / 1000:.3f}",
        )
        for r in results:
            name = r.case_id if run.repeat == 1 else f"{r.case_id}#r{r.repeat}"
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"{run.suite.name}.{target.name}",
                name=name,
                time=f"{r.latency_ms / 1000:.3f}",
            )
            if r.status == "error":
                error = ET.SubElement(case, "error", message=r.error or "error")
                error.text = r.error or ""
            elif not r.passed:
                failed = [a for a in r.assertions if not a.passed]
                message = "; ".join(f"{a.kind}: {a.message}" for a in failed)
                failure = ET.SubElement(
                    case, "failure", message=message or f"score {r.score:.2f}", type="assertion"
                )
                failure.text = "\n".join(
                    f"{'PASS' if a.passed else 'FAIL'} {a.kind} (w={a.weight}): {a.message}"
                    for a in r.assertions
                )
            out = ET.SubElement(case, "system-out")
            out.text = (
                f"status={r.status} run_id={r.run_id} accepted={r.accepted} "
                f"attempts={len(r.attempts)} cost_usd={r.cost_usd:.4f} score={r.score:.3f}"
            )
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data
