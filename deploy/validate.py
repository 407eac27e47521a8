#!/usr/bin/env python3
"""Static checks of everything under deploy/.

    python3 deploy/validate.py            # from anywhere; exits 0 when all checks pass
    python3 deploy/validate.py -v         # also list every file checked

Needs Python 3.11+ and PyYAML (`pip install pyyaml`); no cluster, Docker or network.

What it checks
  * every *.json parses and every *.yml / *.yaml parses (multi-document YAML included);
  * topics.json: the topic set of DESIGN §4 with required keys and sane values,
    co-partitioned topics with equal partition counts, compacted topics compacted,
    match-events kept forever;
  * kubernetes/: apiVersion / kind / metadata.name on every object, no hard-coded
    namespace, selectors matching pod labels, references between objects, the
    StatefulSet's /health readiness probe, volumeClaimTemplate and state mount;
  * compose/docker-compose.yml: the services, their commands and dependencies, and
    that every file it mounts exists;
  * prometheus/prometheus.yml scrapes the workers' /metrics;
  * grafana/: provisioning files and a dashboard whose panels all have targets and
    that charts every orchestra metric;
  * ksqldb/*.sql: every statement ends with ';', brackets and quotes balance, queries.sql
    holds no transient SELECT (queries_push.sql has those and no CREATE), and the
    source streams/tables read topics that topics.json declares.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    sys.stderr.write(
        "deploy/validate.py needs PyYAML: run `python3 -m pip install pyyaml` "
        "(the CI script installs it before calling this script)\n"
    )
    sys.exit(2)

DEPLOY = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------- expected
TOPICS = {
    "match-requests", "robot-responses", "robot-orchestration-events", "match-events",
    "robot-commands", "match-state", "robot-pool-state", "match-history", "match-stats",
}
# Topics the stream runtime creates and names after the application id (changelogs, the
# stats repartition topic, the DLQ): a spec that lists one would share it between ids.
INTERNAL_SUFFIXES = ("-changelog", "-repartition", "-dlq")
CO_PARTITIONED = ["match-requests", "robot-responses", "robot-orchestration-events"]
COMPACTED = {"match-state", "robot-pool-state", "match-history", "match-stats"}
FOREVER = "match-events"
TOPIC_KEYS = {
    "name": str, "partitions": int, "config": dict,
    "description": str, "key": str, "writtenBy": str,
}
# Optional: absent means the replication factor `topics create` is given (default -1, the
# broker's default.replication.factor).
OPTIONAL_TOPIC_KEYS = {"replicationFactor": int}
METRICS = [
    "orchestra_records_processed_total",
    "orchestra_process_latency_seconds",
    "orchestra_e2e_latency_seconds",
    "orchestra_commit_latency_seconds",
    "orchestra_restore_remaining_records",
    "orchestra_restore_records_per_second",
    "orchestra_consumer_lag_records",
    "orchestra_dlq_records_total",
    "orchestra_store_keys",
    "orchestra_active_matches",
    "orchestra_round_duration_seconds",
    "orchestra_pool_robots",
    "orchestra_pool_busy_robots",
    "orchestra_assignment_latency_seconds",
    "orchestra_robot_response_seconds",
    "orchestra_robot_errors_total",
    "orchestra_robot_tokens_total",
    "orchestra_robot_cost_usd",
]
HISTOGRAMS = [
    "orchestra_process_latency_seconds", "orchestra_e2e_latency_seconds",
    "orchestra_commit_latency_seconds", "orchestra_round_duration_seconds",
    "orchestra_assignment_latency_seconds", "orchestra_robot_response_seconds",
]
HTTP_PORT = 8080


class Report:
    def __init__(self, verbose: bool) -> None:
        self.errors: list[str] = []
        self.verbose = verbose
        self.checked = 0

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def check(self, ok: bool, where: str, message: str) -> bool:
        self.checked += 1
        if not ok:
            self.error(where, message)
        return ok

    def note(self, message: str) -> None:
        if self.verbose:
            print(f"  {message}")


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(DEPLOY.parent))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------- parsing
def load_all(r: Report) -> tuple[dict[Path, Any], dict[Path, list[Any]]]:
    """Parse every JSON and YAML file under deploy/."""
    json_docs: dict[Path, Any] = {}
    yaml_docs: dict[Path, list[Any]] = {}
    for path in sorted(DEPLOY.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".json":
            try:
                json_docs[path] = json.loads(path.read_text(encoding="utf-8"))
                r.note(f"parsed {rel(path)}")
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                r.error(rel(path), f"invalid JSON: {e}")
        elif path.suffix in (".yml", ".yaml"):
            try:
                docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
                yaml_docs[path] = docs
                r.note(f"parsed {rel(path)} ({len(docs)} document(s))")
            except (yaml.YAMLError, UnicodeDecodeError) as e:
                r.error(rel(path), f"invalid YAML: {e}")
    return json_docs, yaml_docs


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


# ---------------------------------------------------------------------------- topics.json
def check_topics(r: Report, json_docs: dict[Path, Any]) -> dict[str, dict]:
    path = DEPLOY / "topics.json"
    where = rel(path)
    if path not in json_docs:
        r.check(path.exists(), where, "missing")
        return {}
    spec = json_docs[path]
    if not r.check(isinstance(spec, list), where, "must be a JSON array of topic objects"):
        return {}
    by_name: dict[str, dict] = {}
    for i, t in enumerate(spec):
        w = f"{where}[{i}]"
        if not r.check(isinstance(t, dict), w, "each entry must be an object"):
            continue
        name = t.get("name", f"#{i}")
        w = f"{where} topic {name!r}"
        missing = [k for k in TOPIC_KEYS if k not in t]
        r.check(not missing, w, f"missing keys {missing}")
        for k, typ in {**TOPIC_KEYS, **OPTIONAL_TOPIC_KEYS}.items():
            if k in t:
                ok = isinstance(t[k], typ) and not (typ is int and isinstance(t[k], bool))
                r.check(ok, w, f"{k} must be {typ.__name__}, got {type(t[k]).__name__}")
        for k in ("description", "key", "writtenBy"):
            if isinstance(t.get(k), str):
                r.check(bool(t[k].strip()), w, f"{k} must not be empty")
        if isinstance(t.get("partitions"), int):
            r.check(1 <= t["partitions"] <= 1000, w, f"partitions {t['partitions']} out of 1..1000")
        if isinstance(t.get("replicationFactor"), int):
            r.check(t["replicationFactor"] == -1 or 1 <= t["replicationFactor"] <= 5, w,
                    f"replicationFactor {t['replicationFactor']} must be -1 (broker default) or 1..5")
        cfg = t.get("config") if isinstance(t.get("config"), dict) else {}
        for ck, cv in cfg.items():
            r.check(isinstance(cv, str), w,
                    f"config {ck!r} must be a string (Kafka topic configs are strings), got {cv!r}")
        policy = cfg.get("cleanup.policy")
        r.check(policy in ("delete", "compact", "compact,delete", "delete,compact"), w,
                f"config cleanup.policy must be delete/compact, got {policy!r}")
        for ck in ("retention.ms", "retention.bytes", "segment.ms", "min.compaction.lag.ms",
                   "delete.retention.ms"):
            if ck in cfg:
                r.check(as_int(cfg[ck]) is not None, w, f"config {ck} must be an integer, got {cfg[ck]!r}")
        if isinstance(name, str):
            r.check(name not in by_name, w, "duplicate topic name")
            r.check(re.fullmatch(r"[A-Za-z0-9._-]{1,249}", name) is not None, w, "invalid topic name")
            r.check(not name.endswith("-changelog") and not name.endswith("-dlq"), w,
                    "changelog and DLQ topics are created by the runtime, not listed here")
            by_name[name] = t

    names = set(by_name)
    r.check(not (TOPICS - names), where, f"missing topics {sorted(TOPICS - names)}")
    r.check(not (names - TOPICS), where, f"unexpected topics {sorted(names - TOPICS)} (update DESIGN §4 first)")
    internal = sorted(n for n in names if n.endswith(INTERNAL_SUFFIXES))
    r.check(not internal, where, f"{internal}: internal topics are created by the runtime, named after the application id")

    parts = {n: by_name[n].get("partitions") for n in CO_PARTITIONED if n in by_name}
    r.check(len(set(parts.values())) <= 1, where,
            f"co-partitioned topics must have equal partitions, got {parts}")
    if FOREVER in by_name:
        r.check(by_name[FOREVER]["partitions"] == 8 if isinstance(by_name[FOREVER].get("partitions"), int) else False,
                f"{where} topic {FOREVER!r}", "match-events must have 8 partitions")
    for n in CO_PARTITIONED:
        if n in by_name:
            r.check(by_name[n].get("partitions") == 8, f"{where} topic {n!r}",
                    f"co-partitioned input topics have 8 partitions, got {by_name[n].get('partitions')}")

    for n, t in by_name.items():
        cfg = t.get("config") if isinstance(t.get("config"), dict) else {}
        w = f"{where} topic {n!r}"
        policy = cfg.get("cleanup.policy", "")
        if n in COMPACTED:
            r.check(policy == "compact", w, f"must have cleanup.policy=compact, got {policy!r}")
            r.check("retention.ms" not in cfg, w, "compacted topic should not set retention.ms")
        elif n == FOREVER:
            r.check(policy == "delete", w, f"must have cleanup.policy=delete, got {policy!r}")
            r.check(as_int(cfg.get("retention.ms")) == -1, w,
                    f"must keep events forever: retention.ms=-1, got {cfg.get('retention.ms')!r}")
            if "retention.bytes" in cfg:
                r.check(as_int(cfg["retention.bytes"]) == -1, w, "retention.bytes must be -1")
        elif n in TOPICS:
            r.check(policy == "delete", w, f"must have cleanup.policy=delete, got {policy!r}")
            ms = as_int(cfg.get("retention.ms"))
            r.check(ms is not None and ms > 0, w, f"needs a positive retention.ms, got {cfg.get('retention.ms')!r}")
    r.note(f"topics.json: {len(by_name)} topics")
    return by_name


# ---------------------------------------------------------------------------- kubernetes
def container_port(container: dict, port: Any) -> int | None:
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def flag_value(args: list, flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return str(args[i + 1])
        if isinstance(a, str) and a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def check_kubernetes(r: Report, yaml_docs: dict[Path, list[Any]]) -> None:
    kdir = DEPLOY / "kubernetes"
    objects: list[tuple[Path, dict]] = []
    for path, docs in yaml_docs.items():
        if kdir not in path.parents:
            continue
        for i, doc in enumerate(docs):
            w = f"{rel(path)} doc {i}"
            if not r.check(isinstance(doc, dict), w, "must be a mapping"):
                continue
            r.check(isinstance(doc.get("apiVersion"), str) and doc["apiVersion"], w, "missing apiVersion")
            r.check(isinstance(doc.get("kind"), str) and doc["kind"], w, "missing kind")
            if doc.get("kind") == "Kustomization":
                for res in doc.get("resources") or []:
                    r.check((path.parent / res).exists(), w, f"kustomization resource {res!r} does not exist")
                listed = {(path.parent / res).resolve() for res in doc.get("resources") or []}
                for other in yaml_docs:
                    if other.parent == path.parent and other != path:
                        r.check(other.resolve() in listed, w, f"{other.name} is not listed in resources")
                continue
            meta = doc.get("metadata")
            r.check(isinstance(meta, dict) and isinstance(meta.get("name"), str) and meta["name"], w,
                    "missing metadata.name")
            if isinstance(meta, dict):
                r.check("namespace" not in meta, w, "manifests are namespace-less: remove metadata.namespace")
            objects.append((path, doc))

    def find(kind: str, name: str) -> tuple[Path, dict] | None:
        for p, d in objects:
            if d.get("kind") == kind and (d.get("metadata") or {}).get("name") == name:
                return p, d
        return None

    if not r.check(bool(objects), rel(kdir), "no Kubernetes manifests found"):
        return

    configmaps = {d["metadata"]["name"]: d for _, d in objects if d.get("kind") == "ConfigMap"}

    # every workload: selector matches template labels; env references resolve
    for path, d in objects:
        if d.get("kind") not in ("StatefulSet", "Deployment", "Job"):
            continue
        w = f"{rel(path)} {d['kind']}/{d['metadata']['name']}"
        spec = d.get("spec") or {}
        tmpl = spec.get("template") or {}
        labels = (tmpl.get("metadata") or {}).get("labels") or {}
        if d["kind"] != "Job":
            sel = (spec.get("selector") or {}).get("matchLabels") or {}
            r.check(bool(sel), w, "spec.selector.matchLabels is required")
            r.check(all(labels.get(k) == v for k, v in sel.items()), w,
                    f"selector {sel} does not match template labels {labels}")
        containers = (tmpl.get("spec") or {}).get("containers") or []
        r.check(bool(containers), w, "no containers")
        for c in containers:
            r.check(str(c.get("image", "")).startswith("robotorchestra/orchestra:"), w,
                    f"image must be robotorchestra/orchestra:<tag>, got {c.get('image')!r}")
            env = {e.get("name"): e for e in c.get("env") or []}
            kbs = env.get("KAFKA_BOOTSTRAP_SERVERS", {})
            ref = ((kbs.get("valueFrom") or {}).get("configMapKeyRef")) or {}
            r.check(bool(ref), w, "KAFKA_BOOTSTRAP_SERVERS must come from a ConfigMap (configMapKeyRef)")
            for e in env.values():
                cm = (e.get("valueFrom") or {}).get("configMapKeyRef")
                if cm and not cm.get("optional"):
                    r.check(cm.get("name") in configmaps and cm.get("key") in (configmaps[cm["name"]].get("data") or {}),
                            w, f"env {e.get('name')}: ConfigMap {cm.get('name')}/{cm.get('key')} not defined")
            if d["kind"] != "Job":
                key = env.get("OPENAI_API_KEY", {})
                r.check(bool((key.get("valueFrom") or {}).get("secretKeyRef")), w,
                        "OPENAI_API_KEY must come from a Secret (secretKeyRef)")
                r.check(any(p.get("containerPort") == HTTP_PORT for p in c.get("ports") or []), w,
                        f"container must expose port {HTTP_PORT} (/metrics, /health)")
                r.check(flag_value(c.get("args") or [], "--http") == f"0.0.0.0:{HTTP_PORT}", w,
                        f"args must include --http 0.0.0.0:{HTTP_PORT}")
        if d["kind"] != "Job":
            ann = (tmpl.get("metadata") or {}).get("annotations") or {}
            r.check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/path") == "/metrics"
                    and str(ann.get("prometheus.io/port")) == str(HTTP_PORT), w,
                    "pod template needs prometheus.io/scrape, /port and /path annotations")

    # the StatefulSet of stream workers
    found = find("StatefulSet", "orchestra-worker")
    if r.check(found is not None, rel(kdir), "StatefulSet orchestra-worker missing"):
        path, sts = found
        w = f"{rel(path)} StatefulSet/orchestra-worker"
        spec = sts.get("spec") or {}
        pod = (spec.get("template") or {}).get("spec") or {}
        c = (pod.get("containers") or [{}])[0]
        args = [str(a) for a in c.get("args") or []]
        r.check(args[:1] == ["run"] and flag_value(args, "--role") == "topology", w,
                "args must be `run --role topology ...`")
        r.check(flag_value(args, "--application-id") == "robotorchestra", w, "--application-id robotorchestra expected")
        state_dir = flag_value(args, "--state-dir")
        r.check(state_dir == "/var/lib/orchestra", w, "--state-dir /var/lib/orchestra expected")
        rp = c.get("readinessProbe") or {}
        hg = rp.get("httpGet") or {}
        r.check(hg.get("path") == "/health" and container_port(c, hg.get("port")) == HTTP_PORT, w,
                f"readinessProbe must be httpGet /health on port {HTTP_PORT}")
        r.check(bool(c.get("livenessProbe")), w, "livenessProbe missing")
        lp = (c.get("livenessProbe") or {}).get("httpGet") or {}
        r.check(lp.get("path") != "/health", w,
                "livenessProbe must not use /health: it is not ready during restore and would kill the pod")
        r.check(int(pod.get("terminationGracePeriodSeconds") or 0) >= 60, w,
                "terminationGracePeriodSeconds must be >= 60 for a clean commit")
        vcts = spec.get("volumeClaimTemplates") or []
        r.check(bool(vcts), w, "volumeClaimTemplates missing (state dir must be persistent)")
        claim_names = {(v.get("metadata") or {}).get("name") for v in vcts}
        mounts = {m.get("mountPath"): m.get("name") for m in c.get("volumeMounts") or []}
        r.check(mounts.get(state_dir) in claim_names, w,
                f"the state dir {state_dir} must be mounted from a volumeClaimTemplate")
        svc_name = spec.get("serviceName")
        svc = find("Service", svc_name) if svc_name else None
        if r.check(svc is not None, w, f"serviceName {svc_name!r} has no Service"):
            svc_spec = svc[1].get("spec") or {}
            r.check(svc_spec.get("clusterIP") == "None", rel(svc[0]), f"Service {svc_name} must be headless")
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            r.check(all(labels.get(k) == v for k, v in (svc_spec.get("selector") or {}).items()),
                    rel(svc[0]), f"Service {svc_name} selector does not match the worker pods")
        replicas = spec.get("replicas", 1)
        r.check(isinstance(replicas, int) and 1 <= replicas <= 8, w,
                "replicas must be between 1 and the co-partitioned partition count (8)")

    found = find("Deployment", "orchestra-robots")
    if r.check(found is not None, rel(kdir), "Deployment orchestra-robots missing"):
        path, dep = found
        c = ((((dep.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [{}])[0]
        args = [str(a) for a in c.get("args") or []]
        r.check(args[:1] == ["run"] and flag_value(args, "--role") == "robots",
                f"{rel(path)} Deployment/orchestra-robots", "args must be `run --role robots ...`")

    r.check(bool(configmaps), rel(kdir), "ConfigMap missing")
    r.check(any("KAFKA_BOOTSTRAP_SERVERS" in (cm.get("data") or {}) for cm in configmaps.values()),
            rel(kdir), "no ConfigMap defines KAFKA_BOOTSTRAP_SERVERS")
    r.note(f"kubernetes: {len(objects)} objects")


# ---------------------------------------------------------------------------- compose
def command_list(svc: dict) -> list[str]:
    cmd = svc.get("command")
    if isinstance(cmd, str):
        return cmd.split()
    return [str(c) for c in cmd or []]


def check_compose(r: Report, yaml_docs: dict[Path, list[Any]]) -> None:
    path = DEPLOY / "compose" / "docker-compose.yml"
    where = rel(path)
    docs = yaml_docs.get(path)
    if not r.check(bool(docs), where, "missing or empty"):
        return
    services = (docs[0] or {}).get("services") or {}
    for name in ("kafka", "topics", "robots", "prometheus", "grafana"):
        r.check(name in services, where, f"service {name!r} missing")

    kafka = services.get("kafka") or {}
    r.check(str(kafka.get("image", "")).startswith("apache/kafka:"), where, "kafka must use an apache/kafka image")
    env = kafka.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env if "=" in e)
    r.check("controller" in str(env.get("KAFKA_PROCESS_ROLES", "")), where, "kafka must run in KRaft mode (controller role)")
    listeners = str(env.get("KAFKA_LISTENERS", ""))
    advertised = str(env.get("KAFKA_ADVERTISED_LISTENERS", ""))
    r.check("CONTROLLER://" in listeners, where, "KAFKA_LISTENERS needs a CONTROLLER listener")
    r.check("CONTROLLER" not in advertised, where, "the controller listener must not be advertised")
    r.check("kafka:9092" in advertised, where, "the broker must advertise kafka:9092 to the other containers")
    for k in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
        r.check(str(env.get(k)) == "1", where, f"{k} must be 1 on a single broker")

    topics = services.get("topics") or {}
    tcmd = command_list(topics)
    r.check(tcmd[:2] == ["topics", "create"], where, "service 'topics' must run `orchestra topics create`")
    r.check("kafka" in (topics.get("depends_on") or {}), where, "service 'topics' must depend on kafka")

    workers = [n for n, s in services.items()
               if command_list(s or {})[:1] == ["run"] and flag_value(command_list(s or {}), "--role") == "topology"]
    r.check(len(workers) >= 2, where, f"need two `orchestra run --role topology` workers, found {workers}")
    app_ids = {flag_value(command_list(services[w]), "--application-id") for w in workers}
    r.check(len(app_ids) == 1, where, f"workers must share one --application-id, got {app_ids}")
    for n in workers:
        s = services[n]
        dep = s.get("depends_on") or {}
        r.check(isinstance(dep, dict) and (dep.get("topics") or {}).get("condition") == "service_completed_successfully",
                where, f"worker {n!r} must wait for 'topics' (service_completed_successfully)")
        state_dir = flag_value(command_list(s), "--state-dir")
        vols = [str(v) for v in s.get("volumes") or []]
        r.check(any(v.split(":")[1] == state_dir for v in vols if ":" in v), where,
                f"worker {n!r} must keep its state dir {state_dir} on a volume")
    robots = services.get("robots") or {}
    r.check(flag_value(command_list(robots), "--role") == "robots", where, "service 'robots' must run `run --role robots`")

    # bind mounts must point at files that exist
    for n, s in services.items():
        for v in (s or {}).get("volumes") or []:
            src = str(v).split(":")[0]
            if src.startswith(".") or src.startswith("/"):
                r.check((path.parent / src).resolve().exists(), where, f"service {n!r} mounts missing {src}")
        build = (s or {}).get("build")
        if isinstance(build, dict):
            ctx = (path.parent / build.get("context", ".")).resolve()
            r.check((ctx / build.get("dockerfile", "Dockerfile")).exists(), where,
                    f"service {n!r}: Dockerfile {build.get('dockerfile')} not found in {ctx}")

    # prometheus scrapes the workers
    ppath = DEPLOY / "prometheus" / "prometheus.yml"
    pdocs = yaml_docs.get(ppath)
    if r.check(bool(pdocs), rel(ppath), "missing"):
        targets: set[str] = set()
        for job in (pdocs[0] or {}).get("scrape_configs") or []:
            if job.get("metrics_path", "/metrics") != "/metrics":
                continue
            for sc in job.get("static_configs") or []:
                targets.update(sc.get("targets") or [])
        for n in workers + ["robots"]:
            r.check(f"{n}:{HTTP_PORT}" in targets, rel(ppath), f"does not scrape {n}:{HTTP_PORT}/metrics")
    r.note(f"compose: {len(services)} services, workers {workers}")


# ---------------------------------------------------------------------------- grafana
def check_grafana(r: Report, json_docs: dict[Path, Any], yaml_docs: dict[Path, list[Any]]) -> None:
    gdir = DEPLOY / "grafana"
    ds = yaml_docs.get(gdir / "provisioning" / "datasources" / "prometheus.yml")
    if r.check(bool(ds), rel(gdir), "provisioning/datasources/prometheus.yml missing"):
        sources = (ds[0] or {}).get("datasources") or []
        r.check(any(s.get("type") == "prometheus" for s in sources), rel(gdir), "no prometheus datasource provisioned")
    prov = yaml_docs.get(gdir / "provisioning" / "dashboards" / "orchestra.yml")
    if r.check(bool(prov), rel(gdir), "provisioning/dashboards/orchestra.yml missing"):
        providers = (prov[0] or {}).get("providers") or []
        r.check(any(p.get("type") == "file" and (p.get("options") or {}).get("path") for p in providers),
                rel(gdir), "dashboard provider needs type file and options.path")

    path = gdir / "dashboards" / "orchestra.json"
    where = rel(path)
    dash = json_docs.get(path)
    if not r.check(isinstance(dash, dict), where, "missing or not a JSON object"):
        return
    for k in ("title", "uid", "panels", "schemaVersion"):
        r.check(k in dash, where, f"missing {k!r}")
    variables = {v.get("name") for v in (dash.get("templating") or {}).get("list") or []}
    panels = dash.get("panels") or []
    flat: list[dict] = []
    for p in panels:
        flat.append(p)
        flat.extend(p.get("panels") or [])
    ids = [p.get("id") for p in flat]
    r.check(len(ids) == len(set(ids)), where, "panel ids must be unique")
    exprs: list[str] = []
    cells: dict[tuple[int, int], str] = {}
    graphs = 0
    for p in flat:
        title = p.get("title", f"id {p.get('id')}")
        gp = p.get("gridPos") or {}
        r.check(all(isinstance(gp.get(k), int) for k in ("x", "y", "w", "h")), where, f"panel {title!r}: bad gridPos")
        if all(isinstance(gp.get(k), int) for k in ("x", "y", "w", "h")):
            r.check(gp["x"] + gp["w"] <= 24, where, f"panel {title!r} is wider than the 24-column grid")
            for x in range(gp["x"], gp["x"] + gp["w"]):
                for y in range(gp["y"], gp["y"] + gp["h"]):
                    if (x, y) in cells:
                        r.error(where, f"panel {title!r} overlaps panel {cells[(x, y)]!r}")
                        break
                    cells[(x, y)] = title
                else:
                    continue
                break
        if p.get("type") == "row":
            continue
        graphs += 1
        targets = p.get("targets") or []
        r.check(bool(targets), where, f"panel {title!r} has no targets")
        for t in targets:
            expr = t.get("expr", "")
            r.check(isinstance(expr, str) and expr.strip(), where, f"panel {title!r}: target without expr")
            r.check(expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), where,
                    f"panel {title!r}: unbalanced brackets in {expr!r}")
            for var in re.findall(r"\$(\w+)", expr):
                r.check(var in variables or var.startswith("__"), where,
                        f"panel {title!r}: unknown variable ${var}")
            exprs.append(expr)
        dsref = p.get("datasource") or {}
        uid = dsref.get("uid", "") if isinstance(dsref, dict) else str(dsref)
        if uid.startswith("${"):
            r.check(uid[2:-1] in variables, where, f"panel {title!r}: datasource variable {uid} not defined")
    r.check(graphs >= 10, where, f"expected a real dashboard (>= 10 panels), found {graphs}")
    text = "\n".join(exprs)
    for m in METRICS:
        r.check(m in text, where, f"no panel charts {m}")
    for m in HISTOGRAMS:
        r.check(f"{m}_bucket" in text, where, f"{m} is a histogram: chart its _bucket quantiles")
    r.note(f"grafana: {graphs} panels, {len(exprs)} queries")


# ---------------------------------------------------------------------------- ksqlDB
KSQL_VERBS = ("CREATE", "SELECT", "SET", "UNSET", "INSERT", "DROP", "PRINT", "SHOW", "LIST",
              "DESCRIBE", "EXPLAIN", "TERMINATE", "PAUSE", "RESUME", "DEFINE", "UNDEFINE", "ASSERT")


def split_sql(text: str) -> tuple[list[str], str, list[str]]:
    """Split on ';' outside quotes and comments. Returns (statements, tail, problems)."""
    statements: list[str] = []
    problems: list[str] = []
    buf: list[str] = []
    i, n = 0, len(text)
    quote: str | None = None
    while i < n:
        ch = text[i]
        if quote:
            buf.append(ch)
            if ch == quote:
                if i + 1 < n and text[i + 1] == quote:  # '' escape
                    buf.append(text[i + 1])
                    i += 1
                else:
                    quote = None
        elif ch in ("'", "`", '"'):
            quote = ch
            buf.append(ch)
        elif text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            buf.append("\n")
            continue
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                problems.append("unterminated /* comment")
                i = n
                continue
            i = j + 2
            buf.append(" ")
            continue
        elif ch == ";":
            statements.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
        i += 1
    if quote:
        problems.append(f"unterminated {quote} quote")
    return statements, "".join(buf).strip(), problems


def strip_strings(stmt: str) -> str:
    return re.sub(r"'(?:[^']|'')*'|`[^`]*`|\"[^\"]*\"", "''", stmt)


def check_ksql(r: Report, topics: dict[str, dict]) -> None:
    files = sorted((DEPLOY / "ksqldb").glob("*.sql"))
    if not r.check(bool(files), rel(DEPLOY / "ksqldb"), "no .sql files"):
        return
    sources: dict[str, str] = {}
    for path in files:
        where = rel(path)
        statements, tail, problems = split_sql(path.read_text(encoding="utf-8"))
        for prob in problems:
            r.error(where, prob)
        r.check(not tail, where, f"statement does not end with ';': {tail[:80]!r}")
        for stmt in statements:
            head = " ".join(stmt.split())[:70]
            if not r.check(bool(stmt), where, "empty statement (stray ';')"):
                continue
            verb = stmt.split(None, 1)[0].upper()
            r.check(verb in KSQL_VERBS, where, f"unknown statement start {verb!r} in {head!r}")
            # A statement verb at the start of a later line means a ';' is missing before it
            # (bodies of CREATE ... AS are indented in this file).
            for line in stmt.splitlines()[1:]:
                first = line.split(None, 1)[0].upper() if line.strip() else ""
                if line[:1].strip() and first in KSQL_VERBS:
                    r.error(where, f"missing ';' before {' '.join(line.split())[:60]!r} (in {head!r})")
            bare = strip_strings(stmt)
            for o, c in ("()", "<>"):
                if o == "<":
                    # only type brackets: ARRAY<...>, MAP<...>, STRUCT<...>
                    opened = len(re.findall(r"\b(?:ARRAY|MAP|STRUCT)\s*<", bare, re.I))
                    closed = bare.count(">") - len(re.findall(r"[=<>]=|<>|->|=>", bare))
                    r.check(opened <= closed, where, f"unbalanced type brackets in {head!r}")
                else:
                    r.check(bare.count(o) == bare.count(c), where, f"unbalanced {o}{c} in {head!r}")
            up = " ".join(bare.upper().split())
            m = re.match(r"CREATE (?:OR REPLACE )?(?:SOURCE )?(STREAM|TABLE) (\w+)", up)
            if m:
                kind, name = m.groups()
                r.check(name not in sources, where, f"{kind} {name} defined twice")
                sources[name] = kind
                is_as = re.search(r"\bAS SELECT\b", up) is not None
                topic = re.search(r"KAFKA_TOPIC\s*=\s*'([^']+)'", stmt, re.I)
                fmt = re.search(r"VALUE_FORMAT\s*=\s*'([^']+)'", stmt, re.I)
                if not is_as:
                    r.check(topic is not None and topic.group(1) in topics, where,
                            f"{kind} {name} must read a topic of topics.json, got {topic.group(1) if topic else None!r}")
                    r.check(fmt is not None and fmt.group(1).upper() == "JSON", where,
                            f"{kind} {name} must use VALUE_FORMAT='JSON'")
                else:
                    r.check(topic is None or topic.group(1) not in topics, where,
                            f"{kind} {name} must not write into the RobotOrchestra topic {topic.group(1) if topic else ''!r}")
                    r.check("EMIT CHANGES" in up, where, f"{kind} {name} AS SELECT needs EMIT CHANGES")
                    for src in re.findall(r"\bFROM (\w+)", up):
                        r.check(src in sources, where, f"{kind} {name} reads {src}, which is not defined above it")
            if up.startswith("SELECT"):
                for src in re.findall(r"\bFROM (\w+)", up):
                    r.check(src in sources, where, f"query reads {src}, which is not defined above it")
        text = path.read_text(encoding="utf-8")
        if path.name != "queries.sql":
            # queries_push.sql: transient queries over the sources of queries.sql only.
            r.check(not re.search(r"^\s*CREATE\b", text, re.I | re.M), where,
                    "CREATE statements belong in queries.sql")
            r.note(f"{where}: {len(statements)} statements")
            continue
        # queries.sql runs as a script: DDL and persistent queries, no transient query
        # (a push query never ends, so the script would stall on it).
        for stmt in statements:
            if stmt.split(None, 1)[0].upper() == "SELECT":
                r.error(where, f"transient query in the DDL file (move it to queries_push.sql): {' '.join(stmt.split())[:60]!r}")
        # the statements the brief asks for
        envelope = re.search(r"CREATE\s+STREAM\s+\w+\s*\((.*?)\)\s*WITH\s*\(([^)]*'match-events'[^)]*)\)", text, re.S | re.I)
        if r.check(envelope is not None, where, "no CREATE STREAM over match-events"):
            cols = envelope.group(1).lower()
            for col in ("eventid", "eventtype", "schemaversion", "matchid", "timestamp",
                        "correlationid", "causationid", "data"):
                r.check(col in cols, where, f"match-events stream lacks envelope column {col}")
        for topic in ("match-history", "match-state"):
            r.check(re.search(rf"CREATE\s+(?:SOURCE\s+)?TABLE\s+\w+\s*\([^;]*'{topic}'", text, re.I) is not None,
                    where, f"no CREATE TABLE over {topic}")
        r.note(f"{where}: {len(statements)} statements")


# ---------------------------------------------------------------------------- main
def main(argv: list[str]) -> int:
    r = Report(verbose="-v" in argv or "--verbose" in argv)
    json_docs, yaml_docs = load_all(r)
    topics = check_topics(r, json_docs)
    check_kubernetes(r, yaml_docs)
    check_compose(r, yaml_docs)
    check_grafana(r, json_docs, yaml_docs)
    check_ksql(r, topics)
    if r.errors:
        print(f"deploy/validate.py: {len(r.errors)} problem(s):", file=sys.stderr)
        for e in r.errors:
            print(f"  - {e}", file=sys.stderr)
        return 1
    print(f"deploy/validate.py: OK ({len(json_docs)} JSON and {len(yaml_docs)} YAML files, "
          f"{r.checked} checks)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
