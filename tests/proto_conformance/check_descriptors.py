#!/usr/bin/env python3
"""Check Quiver's proto/milvus/*.proto against the descriptors bundled with pymilvus.

Compiles our .proto files with grpc_tools.protoc into a descriptor set (in a temp dir)
and compares, for every message, enum and RPC that we define, with pymilvus's generated
descriptor of the same full name:

  messages: every field of theirs exists in ours and vice versa, with the same number,
            name, type, type_name (messages/enums), label and oneof membership;
  enums:    every value we define exists in theirs with the same number;
  service:  every RPC we define exists in their MilvusService with the same input and
            output types and streaming flags.

Exits 0 when there are no differences, 1 otherwise (the list is printed), 2 on setup errors.
Values present only in their enums are listed as notes (they do not fail the check:
prost enums are open, unknown values decode fine).

--additions-ok (for newer pymilvus releases than the one the protos follow): fields that
only pymilvus defines, and oneof-membership changes of an otherwise identical field (the
wire encoding is the same), become notes; only real conflicts fail (a number reused with
another name, type or label, an RPC with other types, a message or enum value we define
that pymilvus lacks or numbers differently).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2 as D

HERE = Path(__file__).resolve().parent
DEFAULT_PROTO_DIR = HERE.parent.parent / "proto" / "milvus"

TYPE_NAMES = {v: k[len("TYPE_"):].lower() for k, v in D.FieldDescriptorProto.Type.items()}
LABEL_NAMES = {v: k[len("LABEL_"):].lower() for k, v in D.FieldDescriptorProto.Label.items()}


def compile_ours(proto_dir: Path) -> D.FileDescriptorSet:
    from grpc_tools import protoc

    try:
        from importlib.resources import files

        wkt = str(files("grpc_tools") / "_proto")
    except Exception:  # pragma: no cover - very old Python
        import pkg_resources

        wkt = pkg_resources.resource_filename("grpc_tools", "_proto")
    protos = sorted(p.name for p in proto_dir.glob("*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files in {proto_dir}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "quiver.desc"
        args = ["protoc", f"-I{proto_dir}", f"-I{wkt}", "--include_imports",
                f"--descriptor_set_out={out}", *protos]
        rc = protoc.main(args)
        if rc != 0:
            print(f"error: protoc failed ({rc}) on {proto_dir}", file=sys.stderr)
            sys.exit(2)
        fds = D.FileDescriptorSet()
        fds.ParseFromString(out.read_bytes())
    return fds


def load_theirs() -> tuple[str, dict[str, D.FileDescriptorProto]]:
    import pymilvus

    files: dict[str, D.FileDescriptorProto] = {}
    for mod in ("common_pb2", "schema_pb2", "msg_pb2", "milvus_pb2", "rg_pb2", "feder_pb2"):
        try:
            m = importlib.import_module(f"pymilvus.grpc_gen.{mod}")
        except ImportError:
            continue
        fdp = D.FileDescriptorProto()
        m.DESCRIPTOR.CopyToProto(fdp)
        files[fdp.name] = fdp
    return getattr(pymilvus, "__version__", "?"), files


def index(files) -> tuple[dict, dict, dict]:
    """full name -> DescriptorProto / EnumDescriptorProto / ServiceDescriptorProto."""
    msgs, enums, services = {}, {}, {}

    def walk(prefix: str, m: D.DescriptorProto) -> None:
        name = f"{prefix}.{m.name}"
        msgs[name] = m
        for n in m.nested_type:
            walk(name, n)
        for e in m.enum_type:
            enums[f"{name}.{e.name}"] = e

    for f in files:
        for m in f.message_type:
            walk(f.package, m)
        for e in f.enum_type:
            enums[f"{f.package}.{e.name}"] = e
        for s in f.service:
            services[f"{f.package}.{s.name}"] = s
    return msgs, enums, services


def oneof_of(m: D.DescriptorProto, f: D.FieldDescriptorProto) -> str:
    if not f.HasField("oneof_index"):
        return "-"
    kind = "optional" if f.proto3_optional else "oneof"
    return f"{kind} {m.oneof_decl[f.oneof_index].name}"


def describe(m: D.DescriptorProto, f: D.FieldDescriptorProto) -> str:
    t = TYPE_NAMES.get(f.type, str(f.type))
    if f.type_name:
        t += f" {f.type_name.lstrip('.')}"
    return f"{f.number}:{f.name} {LABEL_NAMES.get(f.label, f.label)} {t} [{oneof_of(m, f)}]"


# What we define ahead of the pymilvus release the protos follow, because a newer one has it
# (checked there like everything else: same number, name and type): Int8 vectors (pymilvus 3.0).
NEWER_ADDITIONS = {
    ("message", "milvus.proto.schema.VectorField", "int8_vector"),
    ("enum", "milvus.proto.schema.DataType", "Int8Vector"),
    ("enum", "milvus.proto.common.PlaceholderType", "Int8Vector"),
}


def compare(ours_fds: D.FileDescriptorSet, theirs_files, additions_ok: bool = False) -> tuple[list[str], list[str], dict]:
    our_files = [f for f in ours_fds.file if not f.name.startswith("google/")]
    om, oe, os_ = index(our_files)
    tm, te, ts = index(theirs_files.values())
    diffs: list[str] = []
    notes: list[str] = []

    for name in sorted(om):
        ours = om[name]
        theirs = tm.get(name)
        if theirs is None:
            diffs.append(f"message {name}: not in pymilvus")
            continue
        of = {f.number: f for f in ours.field}
        tf = {f.number: f for f in theirs.field}
        for num in sorted(set(of) | set(tf)):
            a, b = of.get(num), tf.get(num)
            if a is None:
                msg = f"message {name}: missing field {describe(theirs, b)}"
                (notes if additions_ok else diffs).append(msg)
            elif b is None and ("message", name, a.name) in NEWER_ADDITIONS:
                notes.append(f"message {name}: field {a.name} is a newer pymilvus's")
            elif b is None:
                diffs.append(f"message {name}: extra field {describe(ours, a)} (not in pymilvus)")
            else:
                da, db = describe(ours, a), describe(theirs, b)
                if da != db:
                    msg = f"message {name}: field differs: ours {da} / pymilvus {db}"
                    same_wire = (a.name, a.type, a.type_name, a.label) == (b.name, b.type, b.type_name, b.label)
                    if additions_ok and same_wire:
                        notes.append(msg + " (oneof membership only; same wire encoding)")
                    else:
                        diffs.append(msg)
        if ours.options.map_entry != theirs.options.map_entry:
            diffs.append(f"message {name}: map_entry ours {ours.options.map_entry} / pymilvus {theirs.options.map_entry}")

    for name in sorted(oe):
        ours = oe[name]
        theirs = te.get(name)
        if theirs is None:
            diffs.append(f"enum {name}: not in pymilvus")
            continue
        tv = {v.name: v.number for v in theirs.value}
        for v in ours.value:
            if v.name not in tv and ("enum", name, v.name) in NEWER_ADDITIONS:
                notes.append(f"enum {name}: value {v.name} is a newer pymilvus's")
            elif v.name not in tv:
                diffs.append(f"enum {name}: value {v.name} = {v.number} not in pymilvus")
            elif tv[v.name] != v.number:
                diffs.append(f"enum {name}: value {v.name} = {v.number}, pymilvus has {tv[v.name]}")
        ov = {v.name for v in ours.value}
        missing = [f"{k} = {n}" for k, n in tv.items() if k not in ov]
        if missing:
            notes.append(f"enum {name}: pymilvus has values we do not define: {', '.join(missing)}")

    rpcs = 0
    for name in sorted(os_):
        ours = os_[name]
        theirs = ts.get(name)
        if theirs is None:
            diffs.append(f"service {name}: not in pymilvus")
            continue
        tmeth = {m.name: m for m in theirs.method}
        for m in ours.method:
            rpcs += 1
            t = tmeth.get(m.name)
            if t is None:
                diffs.append(f"rpc {name}.{m.name}: not in pymilvus")
                continue
            for attr in ("input_type", "output_type", "client_streaming", "server_streaming"):
                if getattr(m, attr) != getattr(t, attr):
                    diffs.append(f"rpc {name}.{m.name}: {attr} ours {getattr(m, attr)} / pymilvus {getattr(t, attr)}")

    counts = {"messages": len(om), "enums": len(oe), "rpcs": rpcs}
    return diffs, notes, counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proto-dir", type=Path, default=DEFAULT_PROTO_DIR)
    ap.add_argument("--quiet-notes", action="store_true", help="do not print notes")
    ap.add_argument("--additions-ok", action="store_true",
                    help="only conflicts fail; fields pymilvus adds are notes (for newer pymilvus)")
    args = ap.parse_args()

    ours = compile_ours(args.proto_dir.resolve())
    version, theirs = load_theirs()
    diffs, notes, counts = compare(ours, theirs, args.additions_ok)
    head = (f"pymilvus {version}: checked {counts['messages']} messages, {counts['enums']} enums, "
            f"{counts['rpcs']} rpcs from {args.proto_dir}"
            + (" (additions ok)" if args.additions_ok else ""))
    if notes and not args.quiet_notes:
        print(f"{len(notes)} note(s):")
        for n in notes:
            print(f"  note: {n}")
    if diffs:
        print(f"{len(diffs)} difference(s):")
        for d in diffs:
            print(f"  DIFF: {d}")
        print(f"{head}: FAILED ({len(diffs)} differences)")
        return 1
    print(f"{head}: OK, no differences")
    return 0


if __name__ == "__main__":
    sys.exit(main())
