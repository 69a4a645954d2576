# Helpers of rules/export.smk.


def export_targets():
    """Every distilled set of the run packaged for sharing, and the run's captions when it has any."""
    sets = [f"{RESULTS}/export/{m}-ipc{i}-seed{s}" for m, i, s in own_sets()]
    return sets + ([f"{RESULTS}/export/captions.jsonl"] if "vlcp" in config["methods"] else [])
