"""Generate a realistic workflow of a given size (jobs with steps, env, with:, expressions)."""

from __future__ import annotations


def generate_workflow(lines: int = 1000) -> str:
    """A valid workflow text of about ``lines`` lines."""
    out = [
        "name: generated",
        "description: A generated workflow for benchmarks",
        "inputs:",
        "  version: {type: string, required: true}",
        "  replicas: {type: number, default: 2}",
        "vars: {app_dir: /opt/app}",
        "env: {LC_ALL: C}",
        "defaults: {timeout: 10m, retry: {max-attempts: 3}}",
        "timeout: 2h",
        "jobs:",
    ]
    job = 0
    while len(out) < lines:
        needs = f"    needs: [job{job - 1}]" if job else "    needs: []"
        out += [f"  job{job}:", "    runs-on: web-servers", needs, "    env:", f"      JOB: job{job}", "    steps:"]
        for step in range(8):
            out += [
                f"      - id: s{step}",
                f"        name: Step {step} of job {job}",
                "        uses: exec/shell",
                "        with:",
                f"          command: ./deploy.sh --step {step} --job {job} --version $<< inputs.version >>",
                "          cwd: $<< vars.app_dir >>",
                "        env: {MODE: rolling, TAG: v1.10, FLAG: 'on'}",
                "        timeout: 5m",
                "        retry: {max-attempts: 5, initial-interval: 2s, backoff: 2, max-interval: 1m}",
            ]
            if step:
                # Distinct text per step, as in real files: no expression is parsed from a cache.
                out.append(f"        if: $<< success() && steps.s{step - 1}.outputs.status == 'ok-{job}-{step}' >>")
        out += ["    outputs:", f"      status: $<< steps.s7.outputs.status || 'job{job}' >>"]
        job += 1
    return "\n".join(out) + "\n"
