# Helpers of rules/encode.smk.


def encode_train_option():
    """The fine-tuning latents an encode job also stores: centre crops at the fine-tune resolution,
    mirrored too for random flips, when fine-tuning trains from the cache."""
    finetune = config["finetune"]
    if not finetune["from_latents"]:
        return ""
    flip = " --flip" if finetune["random_flip"] else ""
    return f"--train-resolution {finetune['resolution']}{flip}"
