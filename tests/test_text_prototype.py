"""Algorithm 2 on hand-made captions whose answers are worked out by hand in the comments."""

import pytest

from vlcp.text_prototype import (
    class_text_prototypes,
    cluster_keywords,
    nonrepresentative_words,
    score,
    stop_words,
    tokenize,
)

LABEL = "Saluki, gazelle hound"
# Modelled on the paper's Table 6: white, slender dogs, some running on grass, some standing indoors.
CAPTIONS = {
    "s/0.jpg": "The Saluki is a slender white dog running on grass.",
    "s/1.jpg": "A slender white dog, running across the grassy field.",
    "s/2.jpg": "This slender dog is brown and standing on a carpet.",
    "s/3.jpg": "A slender, WHITE dog standing; brown markings on a carpet, carpet everywhere.",
}
MEMBERS = [["s/0.jpg", "s/1.jpg"], ["s/2.jpg", "s/3.jpg"]]


def test_stop_words_are_nltks_english_list():
    words = stop_words()
    assert len(words) == 179
    assert {"the", "a", "is", "on", "and", "this", "very", "wouldn't"} <= words
    assert "across" not in words and "dog" not in words


def test_tokenize_splits_punctuation_and_lowercases():
    assert tokenize("A slender, WHITE dog; brown.") == ["a", "slender", "white", "dog", "brown"]
    assert tokenize("well-known 3rd dog's") == ["well", "known", "rd", "dog", "s"]


def test_nonrepresentative_words_by_document_frequency():
    # n = 4, beta = 0.7 -> a word in >= 2.8 captions: slender (4), dog (4), white (3);
    # 'a' (3) is a stop word; running, brown, standing, carpet are in 2 captions.
    assert nonrepresentative_words(list(CAPTIONS.values()), 0.7) == ["dog", "slender", "white"]
    # beta = 0.5 -> >= 2 captions: running, brown, standing, carpet, saluki? (1: no), the (stop).
    assert nonrepresentative_words(list(CAPTIONS.values()), 0.5) == [
        "brown",
        "carpet",
        "dog",
        "running",
        "slender",
        "standing",
        "white",
    ]


def test_saluki_example_keywords_and_prototypes():
    protos = class_text_prototypes(CAPTIONS, MEMBERS, LABEL, beta=0.7, top_k=3)
    # Cluster 0 pooled, minus stop words, label words (saluki, gazelle, hound) and N:
    #   running grass | running across grassy field -> running 2, grass 1, across 1 (top 3, ties by first sight)
    # Scores: caption 0 = running 2 + grass 1 = 3; caption 1 = running 2 + across 1 = 3 ('grassy' is not 'grass').
    # Tie -> first in index order.
    assert protos[0]["keywords"] == [["running", 2], ["grass", 1], ["across", 1]]
    assert protos[0]["prompt"] == CAPTIONS["s/0.jpg"] and protos[0]["image"] == "s/0.jpg"
    # Cluster 1: brown standing carpet | standing brown markings carpet carpet everywhere
    #   -> carpet 3, brown 2, standing 2 (brown seen before standing).
    # Scores: caption 2 = 3 + 2 + 2 = 7; caption 3 = 7 as well (carpet counted once per caption) -> caption 2.
    assert protos[1]["keywords"] == [["carpet", 3], ["brown", 2], ["standing", 2]]
    assert protos[1]["image"] == "s/2.jpg"
    assert all(p["nonrepresentative"] == ["dog", "slender", "white"] for p in protos)


def test_highest_score_wins_over_index_order():
    captions = {"a": "red ball", "b": "red ball on blue grass", "c": "blue grass"}
    # keywords: red 2, ball 2, blue 2, grass 2 (n = 3, beta 1 -> nothing non-representative)
    # scores: a = 4, b = 8, c = 4 -> b
    protos = class_text_prototypes(captions, [["a", "b", "c"]], "toy", beta=1.0, top_k=10)
    assert protos[0]["image"] == "b"


def test_every_score_zero_falls_back_to_the_label():
    captions = {"a": "The dog is here.", "b": "A dog, the dog.", "c": "Saluki!"}
    # every word is a stop word, a label word or non-representative ('dog', in 2 of 3 >= 0.6 * 3)
    protos = class_text_prototypes(captions, [["a", "b"], ["c"]], LABEL, beta=0.6, top_k=5)
    assert [p["prompt"] for p in protos] == [LABEL, LABEL]
    assert [p["image"] for p in protos] == [None, None]
    assert [p["keywords"] for p in protos] == [[], []]


def test_whole_token_membership_not_substrings():
    keywords = [["cat", 5], ["row", 1]]
    assert score("A category of arrows.", keywords) == 0
    assert score("A cat in a row, CAT again.", keywords) == 6


def test_label_words_are_excluded_even_when_rare():
    captions = {"a": "gazelle like legs", "b": "hound posture", "c": "other words here"}
    keywords = cluster_keywords(captions.values(), stop_words() | set(tokenize(LABEL)), 10)
    assert "gazelle" not in dict(keywords) and "hound" not in dict(keywords)
    assert dict(keywords)["legs"] == 1


def test_top_k_cuts_and_orders_ties_by_first_appearance():
    keywords = cluster_keywords(["zeta beta alpha", "alpha gamma"], frozenset(), 3)
    assert keywords == [("alpha", 2), ("zeta", 1), ("beta", 1)]


def test_label_and_label_keywords_strategies():
    label = class_text_prototypes(CAPTIONS, MEMBERS, LABEL, 0.7, 3, strategy="label")
    assert [p["prompt"] for p in label] == [LABEL, LABEL] and label[0]["image"] is None
    assert label[0]["keywords"] == [["running", 2], ["grass", 1], ["across", 1]]
    lfk = class_text_prototypes(CAPTIONS, MEMBERS, LABEL, 0.7, 3, strategy="label+keywords")
    assert lfk[0]["prompt"] == "Saluki, gazelle hound, running, grass, across"
    # GGS: the label, then the generated sentence; the label alone where the sentence is empty
    sentences = ["A dog runs.", ""]
    gpt = class_text_prototypes(CAPTIONS, MEMBERS, LABEL, 0.7, 3, strategy="gpt", generate=lambda keywords: sentences)
    assert [p["prompt"] for p in gpt] == ["Saluki, gazelle hound, A dog runs.", LABEL]
    with pytest.raises(ValueError, match="unknown prompt strategy"):
        class_text_prototypes(CAPTIONS, MEMBERS, LABEL, 0.7, 3, strategy="ggs")


def test_generated_sentences_strategy_with_a_tiny_language_model(tmp_path):
    from vlcp import contract, tiny_models
    from vlcp.models import load_text_generator
    from vlcp.settings import section
    from vlcp.text_prototype import first_sentence, generate_sentences, generator_prompt, main

    GENERATOR_PROMPT = section("text_prototype")["generator_prompt"]["default"]

    assert first_sentence("  A white  dog runs. It is fast.") == "A white dog runs."
    assert first_sentence("no end here") == "no end here" and first_sentence("   ") == ""
    assert generator_prompt(GENERATOR_PROMPT, "tench", [("green", 3), ("fish", 2)]) == (
        "Keywords: green, fish.\nA photo of a tench, described in one sentence:"
    )
    tiny_models.save_tiny_gpt(tmp_path / "gpt", seed=0)
    model, tokenizer = load_text_generator(str(tmp_path / "gpt"))
    assert tokenizer.padding_side == "left"
    records = [{"image": img, "class": "saluki", "label": LABEL} for img in CAPTIONS]
    contract.write_index(tmp_path / "index.jsonl", [{**r, "width": 8, "height": 8, "mode": "RGB"} for r in records])
    contract.write_captions(tmp_path / "captions.jsonl", [{"image": i, "caption": c} for i, c in CAPTIONS.items()])
    import torch

    contract.write_clusters(
        tmp_path / "clusters.json",
        tmp_path / "clusters.safetensors",
        {"members": MEMBERS, "outliers": []},
        torch.zeros(2, 4, 2, 2),
    )
    args = [
        "--captions",
        str(tmp_path / "captions.jsonl"),
        "--clusters",
        str(tmp_path / "clusters.json"),
        "--index",
        str(tmp_path / "index.jsonl"),
        "--beta",
        "0.7",
        "--top-k",
        "3",
        "--strategy",
        "gpt",
        "--text-generator",
        str(tmp_path / "gpt"),
        "--generator-max-new-tokens",
        "12",
    ]
    main([*args, "--out", str(tmp_path / "a.json")])
    main([*args, "--generator-batch-size", "1", "--out", str(tmp_path / "b.json")])
    first, again = contract.read_prototypes(tmp_path / "a.json"), contract.read_prototypes(tmp_path / "b.json")
    assert first == again, "greedy generation repeats, batched or one prompt at a time"
    vocabulary = set(tiny_models.vocabulary())
    for entry, keywords in zip(first, (["running", "grass", "across"], ["carpet", "brown", "standing"])):
        words = entry["prompt"].removeprefix(f"{LABEL}, ").rstrip(".").split()
        assert entry["image"] is None and 0 < len(words) <= 12 and set(words) <= vocabulary, entry
        assert [w for w, _ in entry["keywords"]] == keywords  # the keywords the sentence was generated from
    # each prompt is the label, then the generator's continuation of the prompt made of the label and that
    # cluster's keywords, so the class is named whatever the generator writes
    prompts = [generator_prompt(GENERATOR_PROMPT, LABEL, e["keywords"]) for e in first]
    assert [e["prompt"] for e in first] == [f"{LABEL}, {s}" for s in generate_sentences(model, tokenizer, prompts, 12)]
    provenance = (tmp_path / "a.json.provenance.json").read_text()
    assert "gpt" in provenance
