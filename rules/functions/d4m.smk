# Helpers of rules/d4m.smk.


def d4m_synthesis_settings():
    """Stage 7's settings for D4M's sets: section d4m's pipeline settings, synthesize.dtype for the rest."""
    synthesis = stage_settings(config, "synthesize")
    return {key: config["d4m"].get(key, value) for key, value in synthesis.items()}
