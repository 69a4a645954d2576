"""The names a config may use for methods, models, prompt strategies and protocols, each list spelled
once: the workflow's wildcard patterns, the command lines' choices and the modules read them from here,
and a test requires config/schema.yaml's enums to equal them."""

# Networks the hard-label protocol trains (vlcp.networks.build_model).
MODELS = ("convnet6", "resnetap10", "resnet18")

# Real-image baselines (vlcp.select), written like a distilled set.
BASELINES = ("random", "herding", "kcenter")

# Prompt strategies of the text prototypes (vlcp.text_prototype); "prototype" is the paper's.
STRATEGIES = ("prototype", "label", "label+keywords", "gpt")

# Methods a config lists: VLCP (a set per prompt strategy), the baselines, and the whole train split.
METHODS = ("vlcp", *BASELINES, "full")

# Evaluation protocols, each with the networks it trains: hard labels as MinimaxDiffusion trains them
# (vlcp.evaluate), soft labels from a teacher as RDED does (vlcp.rded), which knows two of them.
PROTOCOL_MODELS = {"minimax": MODELS, "rded": ("resnet18", "convnet6")}
PROTOCOLS = tuple(PROTOCOL_MODELS)

# The datasets of the paper's tables (vlcp/data/paper_numbers.csv), which a run may name (paper_dataset).
PAPER_DATASETS = ("imagewoof", "imagenette", "imageidc", "imagenet1k", "cifar10", "cifar100")

# The soft-label protocol's students and teachers.
STUDENTS = PROTOCOL_MODELS["rded"]


def vlcp_method(strategy):
    """The method name of VLCP's sets of one prompt strategy: vlcp-prototype, vlcp-label, ..."""
    return f"vlcp-{strategy}"
