# Helpers of rules/caption.smk.


def caption_options():
    """The caption settings an output depends on; the sampling settings only when sampling."""
    settings = stage_settings(config, "caption")
    if not settings["do_sample"]:
        settings = {k: v for k, v in settings.items() if k not in ("temperature", "seed")}
    return fixed_param(options(settings))
