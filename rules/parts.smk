# Parts of classes, workflow side: each per-class rule runs a job per part, classes_per_job classes in
# label order (with 1, a part per class, named after it). A job's output is its part's folder,
# parts/<folder>/<part>/, which holds each of its classes' files <class><suffix>; the command line lists
# them. Snakemake owns the folder: it removes it before the job reruns, and after a job that failed.
#
# Rule gather makes the per-class folders a user reads (the results contract: captions/, clusters/...,
# prototypes/..., and each distilled set) from the parts' folders, with hard links; rules downstream
# read the parts', so a change to one class reruns its part's jobs alone.


def class_parts():
    per_job = config["classes_per_job"]
    if per_job == 1:
        return {cls: [cls] for cls in CLASSES}
    runs = [CLASSES[i : i + per_job] for i in range(0, len(CLASSES), per_job)]
    width = len(str(len(runs)))
    return {f"part{n:0{width}d}": run for n, run in enumerate(runs, 1)}


PARTS = class_parts()
PART_OF = {cls: part for part, classes in PARTS.items() for cls in classes}


def part_classes(wildcards):
    """The class folder names of a per-class job, in label order."""
    return PARTS[wildcards.part]


def part_folder(folder):
    """parts/<folder>/<part>, the folder of the job's part that a per-class rule declares."""
    return f"{RESULTS}/parts/{folder}/{{part}}"


def part_log(folder):
    return f"{LOGS}/{folder}/{{part}}.log"


def in_part(folder, suffix=""):
    """For a command line: the job's classes' files <class><suffix> in its part's folder of <folder>."""

    def paths(wildcards):
        base = part_folder(folder).format(**dict(wildcards.items()))
        return [f"{base}/{cls}{suffix}" for cls in PARTS[wildcards.part]]

    return paths


def per_class(folder):
    """For a command line: a folder per class of the job, <folder>/<class> (what a job keeps to resume)."""

    def paths(wildcards):
        base = f"{RESULTS}/{folder}".format(**dict(wildcards.items()))
        return [f"{base}/{cls}" for cls in PARTS[wildcards.part]]

    return paths


def every_part(folder):
    """Every part's folder of <folder>: what a rule over all classes waits for."""
    return [f"{RESULTS}/parts/{folder}/{part}" for part in PARTS]


def every_class(folder, suffix=""):
    """For a command line: every class's file of <folder>, in label order."""
    return [f"{RESULTS}/parts/{folder}/{PART_OF[cls]}/{cls}{suffix}" for cls in CLASSES]
