"""W&B's own code, asked about bciops' sweep files and offline runs (tests/wandb.rs).

    validate FILE...   one JSON list per file: the violations W&B's validator (`sweeps`) finds
    grid FILE          the configs W&B's grid search suggests, in order, as {name: value}
    read WANDB_DIR     every offline run under WANDB_DIR/wandb, read with W&B's DataStore and
                       wandb_internal_pb2.Record: run fields, config, history rows, summary, exit

Prints JSON on stdout. Never touches the network: nothing here talks to a server.
"""

import glob
import json
import os
import sys

import yaml


def validate(paths):
    import sweeps

    out = []
    for p in paths:
        with open(p) as f:
            config = yaml.safe_load(f)
        out.append(sweeps.schema_violations_from_proposed_config(config))
    return out


def grid(path):
    from sweeps.grid_search import grid_search_next_runs

    with open(path) as f:
        config = yaml.safe_load(f)
    # validate=False: sweeps 0.2.0's SweepConfig drops nested groups while filling defaults
    # (`fill_validate_schema` skips every `param_dict`); `validate` checks the file instead.
    runs = grid_search_next_runs([], config, validate=False, n=100000)
    # Each suggestion is {name: {"value": v}} (W&B's run config); None ends the grid.
    return [
        {k: v["value"] for k, v in r.config.items()} for r in runs if r is not None
    ]


def items(proto_items):
    return {i.key: json.loads(i.value_json) for i in proto_items}


def read(wandb_dir):
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal import datastore

    runs = []
    for path in sorted(glob.glob(os.path.join(wandb_dir, "wandb", "offline-run-*", "run-*.wandb"))):
        ds = datastore.DataStore()
        ds.open_for_scan(path)
        run = {"path": path, "types": [], "history": [], "steps": []}
        while True:
            data = ds.scan_data()
            if data is None:
                break
            rec = wandb_internal_pb2.Record()
            rec.ParseFromString(data)
            kind = rec.WhichOneof("record_type")
            run["types"].append(kind)
            if kind == "run":
                r = rec.run
                run.update(
                    run_id=r.run_id,
                    project=r.project,
                    entity=r.entity,
                    display_name=r.display_name,
                    job_type=r.job_type,
                    sweep_id=r.sweep_id,
                    tags=list(r.tags),
                    start_time=r.start_time.seconds,
                    config=items(r.config.update),
                )
            elif kind == "history":
                run["history"].append(items(rec.history.item))
                run["steps"].append(rec.history.step.num)
            elif kind == "summary":
                run["summary"] = items(rec.summary.update)
            elif kind == "exit":
                run["exit_code"] = rec.exit.exit_code
        runs.append(run)
    return runs


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    result = {"validate": lambda: validate(args), "grid": lambda: grid(args[0]), "read": lambda: read(args[0])}[cmd]()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
