#!/usr/bin/env python3
"""Checks an Envoy bootstrap against what tessera-agent's SDS needs, without running Envoy.

Usage: check_example.py [--envoy FILE] [--agent-config FILE]

FILE defaults: envoy.yaml beside this script, and packaging/config/agent.toml of this repository.
Point them at a deployed pair (e.g. /etc/envoy/envoy.yaml and /etc/tessera/agent.toml) to check
those instead. From the agent's config it takes trust_domain, socket_path and the [sds] keys:
a value that is set wins, otherwise the default the file documents in a comment
(`# socket_path = "..."`), otherwise the agent's built-in default (agent/config.h). Node metadata
in the Envoy file overrides the [sds] keys, as it does for the agent.

It checks that every SdsSecretConfig in the Envoy file
  - names a secret the agent serves with those settings: an X509-SVID (a SPIFFE ID of the trust
    domain, or default_svid_name) where a certificate is expected, a bundle (the trust domain's
    ID, default_bundle_name, or default_all_bundles_name unless SPIFFE validation is disabled)
    where a validation context is expected;
  - fetches it with resource_api_version V3 over api_config_source with api_type GRPC or
    DELTA_GRPC, transport_api_version V3 and envoy_grpc services only;
  - names clusters that exist, are STATIC, speak HTTP/2, have no TLS and whose every endpoint is
    a pipe at the agent's socket_path.
Prints one line per violation and exits 1 if there is any; prints a summary and exits 0 if not.
"""
import argparse
import os
import re
import sys
import tomllib

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ENVOY = os.path.join(HERE, "envoy.yaml")
DEFAULT_AGENT = os.path.join(HERE, "..", "..", "config", "agent.toml")

SDS_KEYS = ("default_svid_name", "default_bundle_name", "default_all_bundles_name")
DISABLE_KEY = "disable_spiffe_cert_validation"
# tessera-agent's defaults (agent/config.h), for a config file that neither sets nor documents
# a key.
BUILT_IN = {
    "socket_path": "/run/tessera/agent/api.sock",
    "default_svid_name": "default",
    "default_bundle_name": "ROOTCA",
    "default_all_bundles_name": "ALL",
    DISABLE_KEY: False,
}
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HTTP_OPTIONS_TYPE = "type.googleapis.com/" + HTTP_OPTIONS
PATH_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
# Where an SdsSecretConfig sits decides what Envoy expects the secret to be.
SECRET_KINDS = {
    "tls_certificate_sds_secret_configs": "certificate",
    "validation_context_sds_secret_config": "validation context",
}


class Failure(Exception):
    """A file that cannot be checked at all."""


class UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key repeated in one map (PyYAML would keep the last one)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def agent_setting(doc, text, table, key, path):
    """`key` (in `table`, or top level): set, else documented as `# key = v`, else built in."""
    holder = doc.get(table, {}) if table else doc
    if key in holder:
        return holder[key]
    found = []
    for line in text.splitlines():
        m = re.match(r"\s*#\s*(%s\s*=.*)$" % re.escape(key), line)
        if m:
            try:
                found.append(tomllib.loads(m.group(1))[key])
            except tomllib.TOMLDecodeError:
                continue
    if not found:
        return BUILT_IN[key]
    if any(v != found[0] for v in found):
        raise Failure(f"{path}: {key} is documented with different defaults: {found}")
    return found[0]


def load_agent(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
        doc = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise Failure(f"{path}: cannot read it as TOML: {e}")
    text = raw.decode("utf-8")
    td = doc.get("trust_domain")
    if not isinstance(td, str) or not td:
        raise Failure(f"{path}: trust_domain is not set")
    td = td.removeprefix("spiffe://").rstrip("/")
    settings = {
        "trust_domain": td,
        "socket_path": agent_setting(doc, text, None, "socket_path", path),
    }
    for key in SDS_KEYS + (DISABLE_KEY,):
        settings[key] = agent_setting(doc, text, "sds", key, path)
    return settings


def apply_node_metadata(settings, envoy, errors):
    """Per-proxy overrides from node.metadata, as the agent applies them."""
    metadata = (envoy.get("node") or {}).get("metadata") or {}
    if not isinstance(metadata, dict):
        errors.append("node.metadata: not a map")
        return settings
    effective = dict(settings)
    for key in SDS_KEYS:
        if key in metadata:
            value = metadata[key]
            if not isinstance(value, str) or not value:
                errors.append(f"node.metadata.{key}: must be a non-empty string, not {value!r}")
            else:
                effective[key] = value
    if DISABLE_KEY in metadata:
        value = metadata[DISABLE_KEY]
        if isinstance(value, bool):
            effective[DISABLE_KEY] = value
        elif value in ("true", "false"):
            effective[DISABLE_KEY] = value == "true"
        else:
            errors.append(f"node.metadata.{DISABLE_KEY}: must be a bool or \"true\"/\"false\", "
                          f"not {value!r}")
    names = [effective[k] for k in SDS_KEYS]
    if len(set(names)) != len(names):
        errors.append(f"the SDS names {dict(zip(SDS_KEYS, names))} must all differ")
    return effective


def is_workload_id(name, td):
    prefix = f"spiffe://{td}/"
    if not name.startswith(prefix):
        return False
    segments = name[len(prefix):].split("/")
    return all(PATH_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments)


def find_sds_configs(node, path, kind, out):
    """Collects (path, kind, SdsSecretConfig) for every map holding an sds_config."""
    if isinstance(node, dict):
        if "sds_config" in node:
            out.append((path, kind, node))
        for key, value in node.items():
            child_kind = kind
            if key.endswith(("_sds_secret_config", "_sds_secret_configs")):
                child_kind = SECRET_KINDS.get(key, key)
            find_sds_configs(value, f"{path}.{key}" if path else key, child_kind, out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            find_sds_configs(value, f"{path}[{i}]", kind, out)


def check_name(path, kind, name, s, errors):
    td = s["trust_domain"]
    bundles = {f"spiffe://{td}", s["default_bundle_name"], s["default_all_bundles_name"]}
    if not isinstance(name, str) or not name:
        errors.append(f"{path}.name: missing")
    elif kind == "certificate":
        if name != s["default_svid_name"] and not is_workload_id(name, td):
            errors.append(f"{path}.name: {name!r} is not an X509-SVID the agent serves (a "
                          f"spiffe://{td}/... ID or {s['default_svid_name']!r})")
    elif kind == "validation context":
        if name not in bundles:
            errors.append(f"{path}.name: {name!r} is not a bundle the agent serves (one of "
                          f"{sorted(bundles)})")
        elif name == s["default_all_bundles_name"] and s[DISABLE_KEY]:
            errors.append(f"{path}.name: {name!r} needs the SPIFFE validator, but "
                          f"{DISABLE_KEY} is true")
    elif kind is None:
        errors.append(f"{path}: an sds_config outside tls_certificate_sds_secret_configs and "
                      f"validation_context_sds_secret_config")
    else:
        errors.append(f"{path}: the agent serves no secrets for {kind}")


def check_source(path, source, errors):
    """The ConfigSource of one SdsSecretConfig; returns the cluster names it uses."""
    if not isinstance(source, dict):
        errors.append(f"{path}: not a map")
        return []
    if source.get("resource_api_version") != "V3":
        errors.append(f"{path}.resource_api_version: must be V3")
    api = source.get("api_config_source")
    if not isinstance(api, dict):
        errors.append(f"{path}.api_config_source: missing (the agent is a gRPC SDS server)")
        return []
    if api.get("api_type") not in ("GRPC", "DELTA_GRPC"):
        errors.append(f"{path}.api_config_source.api_type: must be GRPC or DELTA_GRPC, "
                      f"not {api.get('api_type')!r}")
    if api.get("transport_api_version") != "V3":
        errors.append(f"{path}.api_config_source.transport_api_version: must be V3")
    services = api.get("grpc_services")
    if not isinstance(services, list) or not services:
        errors.append(f"{path}.api_config_source.grpc_services: missing")
        return []
    clusters = []
    for i, service in enumerate(services):
        name = ((service or {}).get("envoy_grpc") or {}).get("cluster_name")
        if not isinstance(name, str) or not name:
            errors.append(f"{path}.api_config_source.grpc_services[{i}]: needs "
                          f"envoy_grpc.cluster_name")
        else:
            clusters.append(name)
    return clusters


def has_http2(cluster):
    options = (cluster.get("typed_extension_protocol_options") or {}).get(HTTP_OPTIONS)
    if isinstance(options, dict) and options.get("@type") == HTTP_OPTIONS_TYPE:
        explicit = options.get("explicit_http_config") or {}
        if isinstance(explicit.get("http2_protocol_options"), dict):
            return True
    # The deprecated cluster-level field, still honoured by Envoy.
    return isinstance(cluster.get("http2_protocol_options"), dict)


def check_cluster(name, clusters, socket_path, errors):
    path = f"cluster {name!r}"
    cluster = clusters.get(name)
    if cluster is None:
        errors.append(f"{path}: not in static_resources.clusters")
        return
    if cluster.get("type", "STATIC") != "STATIC":
        errors.append(f"{path}.type: must be STATIC for a Unix socket")
    if not has_http2(cluster):
        errors.append(f"{path}: needs HTTP/2 (typed_extension_protocol_options: {HTTP_OPTIONS} "
                      f"with explicit_http_config.http2_protocol_options)")
    if "transport_socket" in cluster:
        errors.append(f"{path}.transport_socket: the agent's socket is plaintext; remove it")
    endpoints = []
    for locality in (cluster.get("load_assignment") or {}).get("endpoints") or []:
        for lb in (locality or {}).get("lb_endpoints") or []:
            endpoints.append(((lb or {}).get("endpoint") or {}).get("address") or {})
    if not endpoints:
        errors.append(f"{path}: no endpoint in load_assignment")
    for i, address in enumerate(endpoints):
        pipe = address.get("pipe") if isinstance(address, dict) else None
        got = pipe.get("path") if isinstance(pipe, dict) else None
        if got is None:
            errors.append(f"{path}: endpoint {i} is not a pipe (Unix socket) address")
        elif got != socket_path:
            errors.append(f"{path}: endpoint {i} is {got!r}, but the agent's socket_path is "
                          f"{socket_path!r}")


def check(envoy_path, agent_path):
    """Returns (violations, summary)."""
    settings = load_agent(agent_path)
    try:
        with open(envoy_path, encoding="utf-8") as f:
            envoy = yaml.load(f, Loader=UniqueKeyLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise Failure(f"{envoy_path}: cannot read it as YAML: {e}")
    if not isinstance(envoy, dict):
        raise Failure(f"{envoy_path}: not a YAML map")
    errors = []
    effective = apply_node_metadata(settings, envoy, errors)
    static = envoy.get("static_resources") or {}
    clusters = {c.get("name"): c for c in static.get("clusters") or [] if isinstance(c, dict)}
    found = []
    find_sds_configs(envoy, "", None, found)
    if not found:
        errors.append("no SdsSecretConfig uses the agent: nothing comes from SDS")
    used_clusters, names = set(), set()
    for path, kind, config in found:
        check_name(path, kind, config.get("name"), effective, errors)
        names.add(config.get("name"))
        used_clusters.update(check_source(f"{path}.sds_config", config["sds_config"], errors))
    for name in sorted(used_clusters):
        check_cluster(name, clusters, settings["socket_path"], errors)
    summary = (f"{len(found)} SDS secret configs ({', '.join(sorted(map(str, names)))}) via "
               f"{', '.join(sorted(used_clusters))} at {settings['socket_path']}")
    return errors, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envoy", default=DEFAULT_ENVOY, help="the Envoy bootstrap (YAML)")
    parser.add_argument("--agent-config", default=DEFAULT_AGENT, help="the agent's TOML config")
    args = parser.parse_args()
    prog = os.path.basename(sys.argv[0])
    try:
        errors, summary = check(args.envoy, args.agent_config)
    except Failure as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    for error in errors:
        print(f"{prog}: {args.envoy}: {error}", file=sys.stderr)
    if errors:
        print(f"{prog}: {len(errors)} problem(s): tessera-agent would not serve this Envoy as "
              f"configured", file=sys.stderr)
        return 1
    print(f"{prog}: ok: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
