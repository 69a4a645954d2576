"""Stage 6, text prototype: one prompt per cluster from the class's captions (the paper's Algorithm 2).

Words are maximal runs of letters, lowercased. A word that is not a stop word
and occurs in at least ``beta`` of the class's inlier captions is
non-representative. Per cluster, the pooled caption words minus stop words, the
label's words and the non-representative words are counted; the ``top_k`` most
frequent (ties by first appearance) score each caption of the cluster by the
counts of the distinct keywords it contains. The best caption (ties to the
first in index order) is the text prototype; if every score is 0 the label text
is used instead.

The paper's Table 5 compares three other prompts: the label (L), the label and
the cluster's keywords (L+FK), and GPT-generated sentences (GGS): a causal
language model (``models.text_generator``) writes one sentence per cluster from
the label and its keywords, and the prompt is "<label>, <sentence>": the label
first, as in L+FK, since the sentence alone need not name the class. The authors
publish no code for GGS; the generator's prompt and decoding are documented in
the config schema.
"""

import argparse
import functools
import re
import sys
from collections import Counter
from importlib import resources
from pathlib import Path

from vlcp import contract, provenance
from vlcp.cli import run
from vlcp.names import STRATEGIES
from vlcp.parts import each_class
from vlcp.settings import add_settings

WORD = re.compile(r"[^\W\d_]+")
SENTENCE_END = re.compile(r"(?<=[.!?])\s")


@functools.cache
def stop_words():
    """NLTK's English stop-word list, shipped with vlcp (no download)."""
    text = resources.files("vlcp.data").joinpath("stopwords_english.txt").read_text()
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def tokenize(text):
    """Lowercased words of ``text``: maximal runs of letters, so punctuation and digits split words."""
    return [w.lower() for w in WORD.findall(text)]


def nonrepresentative_words(captions, beta):
    """Words (not stop words) in at least ``beta * n`` of the ``n`` captions, sorted (paper Eq. 2)."""
    df = Counter(w for caption in captions for w in set(tokenize(caption)))
    threshold = beta * len(captions)
    stops = stop_words()
    return sorted(w for w, count in df.items() if count >= threshold and w not in stops)


def cluster_keywords(captions, excluded, top_k):
    """The ``top_k`` most frequent words of a cluster's pooled captions outside ``excluded``, as (word, count).

    Equal counts keep the order in which the words first appear in the pooled captions.
    """
    counts = Counter()
    for caption in captions:
        counts.update(w for w in tokenize(caption) if w not in excluded)
    return counts.most_common(top_k)  # Counter keeps first-insertion order among equal counts


def score(caption, keywords):
    """Sum of the counts of the distinct keywords that occur in ``caption`` as whole words."""
    words = set(tokenize(caption))
    return sum(count for word, count in keywords if word in words)


def text_prototype(cluster_captions, keywords):
    """Index (into ``cluster_captions``) of the best-scoring caption, or None when every score is 0."""
    best, best_score = None, 0
    for i, caption in enumerate(cluster_captions):
        s = score(caption, keywords)
        if s > best_score:
            best, best_score = i, s
    return best


def first_sentence(text):
    """The first sentence of generated text, whitespace collapsed ('' if there is none)."""
    text = " ".join(text.split())
    return SENTENCE_END.split(text, maxsplit=1)[0].strip() if text else ""


def generator_prompt(template, label, keywords):
    """The text generator's prompt for one cluster: ``{label}`` and ``{keywords}`` (comma-separated) filled in."""
    return template.replace("{label}", label).replace("{keywords}", ", ".join(w for w, _ in keywords))


def generate_sentences(model, tokenizer, prompts, max_new_tokens):
    """One sentence per prompt from a causal language model: greedy (so reruns agree), batched with left
    padding, the continuation cut at its first sentence end."""
    import torch

    inputs = tokenizer(prompts, return_tensors="pt", padding=True).to(model.device)
    with torch.inference_mode():
        output = model.generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    texts = tokenizer.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return [first_sentence(t) for t in texts]


def class_text_prototypes(captions, members, label, beta, top_k, strategy="prototype", generate=None):
    """Prompts for every cluster of one class (Algorithm 2).

    ``captions`` maps image path -> caption for the class's inliers, in index order; ``members`` lists
    each cluster's image paths. Returns one dict per cluster with ``prompt``, ``image``, ``keywords``
    and ``nonrepresentative``. For the 'gpt' strategy (the paper's GPT-generated sentences, GGS),
    ``generate(keywords_per_cluster)`` returns one sentence per cluster and the prompt is "<label>, <sentence>",
    or the label alone when the sentence is empty.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown prompt strategy {strategy!r}; choose one of {STRATEGIES}")
    nonrep = nonrepresentative_words(list(captions.values()), beta)
    excluded = stop_words() | set(tokenize(label)) | set(nonrep)
    prototypes = []
    for cluster in members:
        texts = [captions[img] for img in cluster if img in captions]
        images = [img for img in cluster if img in captions]
        keywords = cluster_keywords(texts, excluded, top_k)
        best = text_prototype(texts, keywords)
        if strategy == "prototype" and best is not None:
            prompt, image = texts[best], images[best]
        elif strategy == "label+keywords" and keywords:
            prompt, image = ", ".join([label, *(w for w, _ in keywords)]), None
        else:
            prompt, image = label, None
        prototypes.append(
            {"prompt": prompt, "image": image, "keywords": [[w, c] for w, c in keywords], "nonrepresentative": nonrep}
        )
    if strategy == "gpt":
        sentences = generate([[tuple(k) for k in p["keywords"]] for p in prototypes])
        for p, sentence in zip(prototypes, sentences):
            p["prompt"] = f"{label}, {sentence}" if sentence else label
    return prototypes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captions", nargs="+", required=True, type=Path, help="per class: captions (JSON lines)")
    parser.add_argument("--clusters", nargs="+", required=True, type=Path, help="per class: clusters JSON")
    parser.add_argument(
        "--index", nargs="+", required=True, type=Path, help="per class: train index (for the label text)"
    )
    parser.add_argument("--strategy", choices=STRATEGIES, default="prototype")
    parser.add_argument("--text-generator", help="causal language model (hub id or folder) of the 'gpt' strategy")
    add_settings(parser, "text_prototype")
    parser.add_argument("--out", nargs="+", required=True, type=Path, help="per class: prototypes JSON")
    args = parser.parse_args(argv)
    generator = None
    if args.strategy == "gpt":
        if not args.text_generator:
            parser.error("the 'gpt' strategy needs --text-generator")
        from vlcp.models import device, load_text_generator

        model, tokenizer = load_text_generator(args.text_generator)
        generator = (model.to(device()), tokenizer)
    for one in each_class(args, ("captions", "clusters", "index", "out")):
        prototypes_of_class(one, generator)


def prototypes_of_class(args, generator=None):
    records = contract.read_index(args.index)
    rows = contract.read_captions(args.captions, [r["image"] for r in records])
    clusters, _ = contract.read_clusters(args.clusters)
    outliers = set(clusters["outliers"])
    inlier_captions = {r["image"]: r["caption"] for r in rows if r["image"] not in outliers}
    label = records[0]["label"]
    generate = None
    if generator is not None:
        model, tokenizer = generator

        def generate(keywords_per_cluster):
            prompts = [generator_prompt(args.generator_prompt, label, k) for k in keywords_per_cluster]
            step = args.generator_batch_size
            return [
                s
                for i in range(0, len(prompts), step)
                for s in generate_sentences(model, tokenizer, prompts[i : i + step], args.generator_max_new_tokens)
            ]

    prototypes = class_text_prototypes(
        inlier_captions, clusters["members"], label, args.beta, args.top_k, args.strategy, generate
    )
    contract.write_prototypes(args.out, prototypes)
    provenance.record(args.out, "text_prototype", vars(args), models=[args.text_generator] if generator else ())
    fallbacks = sum(p["image"] is None for p in prototypes)
    print(
        f"{len(prototypes)} prompts ({args.strategy}); {len(prototypes[0]['nonrepresentative']) if prototypes else 0} "
        f"non-representative words; {fallbacks} without a caption image",
        file=sys.stderr,
    )


if __name__ == "__main__":
    run(main)
