"""The names a config may use for methods, models, prompt strategies and protocols, each list spelled
once: the workflow's wildcard patterns, the command lines' choices and the modules read them from here,
and a test requires config/schema.yaml's enums to equal them."""

# Networks the hard-label protocol trains (vlcp.networks.build_model).
MODELS = ("convnet6", "resnetap10", "resnet18")

# Real-image baselines (vlcp.select), written like a distilled set.
BASELINES = ("random", "herding", "kcenter")

# Prompt strategies of the text prototypes (vlcp.text_prototype); "prototype" is the paper's.
STRATEGIES = ("prototype", "label", "label+keywords", "gpt")

# D4M (CVPR 2024) as its own code makes it: the base diffusion model, mini-batch k-means prototypes and
# the label as prompt (vlcp.d4m, rules/d4m.smk).
D4M = "d4m"

# Methods a config lists: VLCP (a set per prompt strategy and candidate count), D4M, the baselines, and the
# whole train split.
METHODS = ("vlcp", D4M, *BASELINES, "full")

# Evaluation protocols, each with the networks it trains: hard labels as MinimaxDiffusion trains them
# (vlcp.evaluate), soft labels from a teacher as RDED does (vlcp.rded), which knows two of them.
PROTOCOL_MODELS = {"minimax": MODELS, "rded": ("resnet18", "convnet6")}
PROTOCOLS = tuple(PROTOCOL_MODELS)

# The datasets of the paper's tables (vlcp/data/paper_numbers.csv), which a run may name (paper_dataset).
PAPER_DATASETS = ("imagewoof", "imagenette", "imageidc", "imagenet1k", "cifar10", "cifar100")

# The soft-label protocol's students and teachers.
STUDENTS = PROTOCOL_MODELS["rded"]

# The entry of config section `resources` of each rule that has its own; every other rule takes `default`.
# A rule uses a GPU when its entry's `gpu` is 1 or more (``gpu_rules``): that alone makes vlcp.plan and
# vlcp.cost price its jobs in GPU time and the SLURM profile send them to a GPU partition (slurm/partitions.yaml).
RESOURCES = {
    "caption": "caption",
    "encode": "encode",
    "finetune": "finetune",
    "cluster": "cluster",
    "d4m_prototype": "cluster",
    "synthesize": "synthesize",
    "d4m_synthesize": "synthesize",
    "evaluate": "evaluate",
    "soft_label": "evaluate",
    "teacher": "evaluate",
}


def resources_entry(rule):
    """The name of the `resources` entry of ``rule``."""
    return RESOURCES.get(rule, "default")


def gpu_rules(resources):
    """The rules that ask for a GPU under config section ``resources``."""
    return tuple(rule for rule, entry in RESOURCES.items() if resources[entry]["gpu"] >= 1)


def vlcp_method(strategy, candidates=1):
    """The method name of VLCP's sets of one prompt strategy: vlcp-prototype, vlcp-label, ...; a set that
    keeps the best of ``candidates`` > 1 images per prototype (synthesize.candidates) adds -k<candidates>."""
    return f"vlcp-{strategy}" + (f"-k{candidates}" if candidates > 1 else "")


def candidate_count(suffix):
    """The candidate count of a set name's -k<K> suffix ('' for 1)."""
    return int(suffix[2:]) if suffix else 1
