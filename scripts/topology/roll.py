"""The rolling upgrade to a release with an expand migration, replica by
replica under load, then its contract migration as a release step."""

import os
import shutil
import signal
import subprocess
import time

import context as ctx
from balancer import wait_balancer
from context import BIN, OUT, REPLICA_PORTS, ROOT, SECONDS, at, die, enter, http, log, psql, results
from replica import Replica
from wrkload import Load, balanced_logs, figures, step


# The fixtures are numbered 9xx so that they stay the newest migrations
# while migrations/ grows.
def migrations_dir(name, *fixtures):
    target = OUT / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(ROOT / "migrations", target)
    for fixture in fixtures:
        for migration in (ROOT / "tests" / "fixtures" / fixture).iterdir():
            shutil.copytree(migration, target / migration.name)
    return target


def scenario_roll(replicas, base):
    enter("roll")
    log("scenario roll: three replicas replaced one by one by a release with an expand migration")
    release2 = migrations_dir("release2-migrations", "topology_release2")
    steps = []
    load = Load(f"{base}/api/articles", seconds=SECONDS * 3)
    time.sleep(2)
    old_release = list(replicas)
    for i, port in enumerate(REPLICA_PORTS):
        t = time.monotonic()
        replicas[i].signal(signal.SIGTERM)
        wait_balancer(f"r{i + 1}", "DOWN")
        code = replicas[i].wait_exit()
        if code != 0:
            die(f"replica {i + 1} of the old release exited with {code} after SIGTERM (0 expected)",
                [replicas[i].log_path])
        replicas[i] = Replica(port, migrations_dir=release2, name=f"release2-{port}")
        replicas[i].wait_ready()
        wait_balancer(f"r{i + 1}", "UP")
        step(steps, f"replica {i + 1}: old stopped, new ready and UP"
             + (" (migrations 901, 902 applied at its boot)" if i == 0 else ""), t, load)
        if i == 0:
            # An old replica serves on the expanded schema, ready, and
            # names the migrations it does not know.
            at("asking an old replica's /ready about the new migrations")
            status, body = http("GET", replicas[1].url("/ready"))
            unknown = (body or {}).get("unknown_migrations", [])
            report_unknown = f"old replica /ready: {status}, unknown_migrations {unknown}"
            log(f"  {report_unknown}")
            if status != 200 or not unknown:
                die(f"{report_unknown} (200 and 901, 902 expected); its body: {body}",
                    [replicas[1].log_path])
    report = load.finish()
    report["steps"] = steps
    report["old_release_during_the_roll"] = report_unknown
    at("counting the backfilled articles")
    nulls = psql("SELECT count(*) FROM articles WHERE word_count IS NULL")
    total = psql("SELECT count(*) FROM articles")
    report["articles_backfilled"] = f"{int(total) - int(nulls)}/{total}"
    results["scenarios"]["roll"] = report
    log(f"  {report['requests']} requests, {report['failed']} failed; backfilled {report['articles_backfilled']}")
    at("judging the load")
    if report["failed"]:
        die(f"the rolling upgrade failed {report['failed']} requests (0 allowed); {figures(report)}",
            balanced_logs([*old_release, *replicas]))
    if nulls != "0":
        die(f"{nulls} of {total} articles were not backfilled", [r.log_path for r in replicas])

    enter("contract")
    log("scenario contract: the contract migrations as a release step, under load")
    release3 = migrations_dir("release3-migrations", "topology_release2", "topology_release3")
    steps = []
    load = Load(f"{base}/api/articles")
    time.sleep(2)
    t = time.monotonic()
    at("conduit migrate run")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUIT_")}
    env.update({"DATABASE_URL": ctx.DB_URL, "CONDUIT_LOG_FORMAT": "json"})
    with open(OUT / "contract.log", "w") as out:
        code = subprocess.run([str(BIN), "migrate", "run", "--migrations-dir", str(release3)],
                              env=env, stdout=out, stderr=subprocess.STDOUT, timeout=120).returncode
    if code != 0:
        die(f"`conduit migrate run` of the contract exited with {code}", [OUT / "contract.log"])
    step(steps, "conduit migrate run (903 NOT VALID, 904 VALIDATE)", t, load)
    report = load.finish()
    report["steps"] = steps
    at("reading the contract constraint")
    valid = psql("SELECT convalidated FROM pg_constraint WHERE conname = 'articles_word_count_present'")
    results["scenarios"]["contract"] = report
    log(f"  {report['requests']} requests, {report['failed']} failed; constraint validated: {valid}")
    at("judging the load")
    if report["failed"]:
        die(f"the contract migration failed {report['failed']} requests (0 allowed); {figures(report)}",
            balanced_logs(replicas) + [OUT / "contract.log"])
    if valid != "t":
        die(f"the contract constraint is not validated (convalidated {valid!r})", [OUT / "contract.log"])
