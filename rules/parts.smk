# The classes_per_job layer, workflow side: what a per-class rule declares and lists on its command
# line, for a job of one class or of a part of several. vlcp/parts.py is the job side.
#
# With `classes_per_job: 1` each per-class rule has a {cls} wildcard; a job per class, whose
# declared outputs are the class's files. With more, the classes fall into runs (parts) of that
# many, in label order; a rule has a {part} wildcard instead, and declares one file per job, the
# part's record parts/<folder>/<part>.tsv, written last, after every class's files. Either way the
# files of each class are the same, at the same paths, and a job's command line lists them.

from types import SimpleNamespace

GROUPED = config["classes_per_job"] > 1


def class_parts():
    per_job = config["classes_per_job"]
    runs = [CLASSES[i : i + per_job] for i in range(0, len(CLASSES), per_job)]
    width = len(str(len(runs)))
    return {f"part{n:0{width}d}": run for n, run in enumerate(runs, 1)}


PARTS = class_parts() if GROUPED else {}
CLASS = "part" if GROUPED else "cls"  # the wildcard of a per-class rule


def job_classes(wildcards):
    """The class folder names of a per-class job."""
    return PARTS[wildcards.part] if GROUPED else [wildcards.cls]


def class_file(folder, suffix=""):
    """What each per-class rule declares for the files <folder>/<class><suffix>, that is the job's class's
    file, or the record of the job's part. ``folder`` is relative to the run's results.
    """
    return f"{RESULTS}/parts/{folder}/{{part}}.tsv" if GROUPED else f"{RESULTS}/{folder}/{{cls}}{suffix}"


def class_files(**files):
    """A per-class rule's files declared once, name -> (folder, suffix): ``input`` and ``output(wrap)`` what
    the rule declares (each class's file; when grouped, the part's record), ``made`` the outputs of the rule
    that writes them all as a later rule's inputs (when grouped, that rule's one record), ``paths`` the same
    files as the job's per-class paths for its command line (params of the same names)."""
    first = next(iter(files.values()))[0]
    return SimpleNamespace(
        input={name: class_file(folder, suffix) for name, (folder, suffix) in files.items()},
        made=(
            {"part": class_file(first)}
            if GROUPED
            else {name: class_file(folder, suffix) for name, (folder, suffix) in files.items()}
        ),
        output=lambda wrap=str: (
            {"part": class_file(first)}
            if GROUPED
            else {name: wrap(class_file(folder, suffix)) for name, (folder, suffix) in files.items()}
        ),
        paths={name: class_paths(folder, suffix) for name, (folder, suffix) in files.items()},
    )


def class_log(folder):
    return f"{LOGS}/{folder}/{{part}}.log" if GROUPED else f"{LOGS}/{folder}/{{cls}}.log"


def class_paths(folder, suffix=""):
    """For a command line: the job's per-class paths of <folder>/<class><suffix>, wildcards filled in."""
    pattern = f"{RESULTS}/{folder}/{{cls}}{suffix}"

    def paths(wildcards):
        values = dict(wildcards.items())
        return [pattern.format(**{**values, "cls": cls}) for cls in job_classes(wildcards)]

    return paths


def all_class_inputs(folder, suffix=""):
    """What each rule over all classes waits for, that is every class's file, or every part's record."""
    if GROUPED:
        return [f"{RESULTS}/parts/{folder}/{part}.tsv" for part in PARTS]
    return all_class_paths(folder, suffix)


def all_class_paths(folder, suffix=""):
    """For a command line: every class's path of <folder>/<class><suffix>, in label order."""
    return [f"{RESULTS}/{folder}/{cls}{suffix}" for cls in CLASSES]


def part_option(wildcards, output):
    """--part-marker for a grouped job: its record, written after every class's files."""
    return f"--part-marker {shlex.quote(output.part)}" if GROUPED else ""
