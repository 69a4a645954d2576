# Helpers of rules/d4m.smk.


def d4m_synthesis_settings():
    """Stage 7's settings for D4M's sets: section synthesize's, with those of d4m.synthesize in their place."""
    return {**stage_settings(config, "synthesize"), **config["d4m"]["synthesize"]}
