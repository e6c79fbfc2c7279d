"""Small generated QC/QI data in the competition format, for demos and tests.

Nothing is downloaded: rows are built from a hand-written word list shipped with the
package (``demo_words.json`` beside this module: products, their query names in every
language, query modifiers, title words), so the whole pipeline can run offline and in CI.
The data imitates the real task's shape where it matters for the code paths:

* queries in eight languages; train uses only six and dev adds ``de``/``it``,
  as in the competition, where dev has languages training lacks;
* about two thirds of the rows are positive;
* negatives mix easy ones (another top-level category) and hard ones (same
  top-level category, different leaf);
* a query string appears in one split only.

The label is a real function of the text (query product == target product), so
a tiny model can learn it.
"""

from __future__ import annotations

import hashlib
import json
import json.scanner
import random
import string
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from relevance.files import atomic_open


DEMO_TRAIN_LANGUAGES = ("en", "es", "fr", "ja", "ko", "pt")
DEMO_DEV_ONLY_LANGUAGES = ("de", "it")
DEMO_LANGUAGES = DEMO_TRAIN_LANGUAGES + DEMO_DEV_ONLY_LANGUAGES
SPLITS = ("train", "dev")
#: What the word list can pair a query with; a task's YAML picks one as `demo_targets`.
TARGET_KINDS = ("category_paths", "item_titles")

POSITIVE_RATE = 0.68  # real QC data: 69.0 % (train), 67.7 % (dev)
DEV_QUERY_SHARE = 0.4  # share of distinct query strings reserved for dev
HARD_NEGATIVE_RATE = 0.5  # share of negatives drawn from the same top-level category


@dataclass(frozen=True)
class Product:
    top: str  # top-level category; kept apart because some level names contain commas
    path: str  # competition-style category path
    title: str  # English product noun used in item titles
    attrs: tuple[str, ...]  # title attributes
    names: dict  # language -> query name (lower case)
    skip: frozenset = frozenset()  # modifier tags that make no sense for this product


#: The word list the rows are made of, shipped beside this module (pyproject.toml's package-data).
WORDS_FILE = resources.files("relevance.data") / "demo_words.json"
_TITLE_FIELDS = ("brand", "title", "a1", "a2", "a3", "colour")  # what a title template may name


class DemoWordsError(ValueError):
    """The demo word list is missing or malformed; the message names the file, the line and the field."""


def _parse_with_lines(text: str) -> tuple[object, dict[int, int]]:
    """`json.loads`, plus the line each object and array starts on (by `id`), for error messages."""
    lines: dict[int, int] = {}
    decoder = json.JSONDecoder()

    def remember(parse):
        def parse_and_remember(s_and_end, *args):
            value, end = parse(s_and_end, *args)
            lines[id(value)] = s_and_end[0].count("\n", 0, s_and_end[1]) + 1
            return value, end
        return parse_and_remember

    decoder.parse_object, decoder.parse_array = remember(decoder.parse_object), remember(decoder.parse_array)
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    return decoder.decode(text), lines


def load_words(path=WORDS_FILE) -> dict:
    """The word list at `path`, checked: every field the generator reads is there, with its type."""
    try:
        words, lines = _parse_with_lines(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise DemoWordsError(f"{path}: the demo word list cannot be read ({err.strerror or err}): "
                             "reinstall the package, or restore the file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        line = getattr(err, "lineno", 0)
        raise DemoWordsError(f"{path}:{line}: field '<json>': not JSON in UTF-8: {err}") from None

    def need(ok, holder, field: str, expected: str) -> None:
        if not ok:
            raise DemoWordsError(f"{path}:{lines.get(id(holder), 0)}: field '{field}': expected {expected}")

    def strings(value, least=1) -> bool:
        return isinstance(value, list) and len(value) >= least and all(isinstance(v, str) and v for v in value)

    def fields(value, field: str, required: set, optional: set = frozenset()) -> None:
        need(isinstance(value, dict), value, field, "an object")
        missing, unknown = required - set(value), set(value) - required - optional
        need(not missing, value, field, f"the fields {sorted(required)}, missing {sorted(missing)}")
        need(not unknown, value, field, f"only the fields {sorted(required | optional)}, not {sorted(unknown)}")

    fields(words, "<file>", {"categories", "modifiers", "brands", "colours", "other_colours", "title_templates"},
           {"about"})
    mods = words["modifiers"]
    fields(mods, "modifiers", set(DEMO_LANGUAGES))
    for lang in DEMO_LANGUAGES:
        need(isinstance(mods[lang], list) and mods[lang], mods, f"modifiers.{lang}", "a list of [tag, template]")
        for i, pair in enumerate(mods[lang]):
            need(strings(pair, 2) and len(pair) == 2 and pair[1].count("{}") == 1, mods[lang],
                 f"modifiers.{lang}[{i}]", 'a [tag, template] pair whose template has one "{}"')
    tags = {tag for pairs in mods.values() for tag, _ in pairs}
    need(isinstance(words["categories"], list) and words["categories"], words, "categories", "a list of objects")
    for c, category in enumerate(words["categories"]):
        fields(category, f"categories[{c}]", {"top", "products"})
        need(isinstance(category["top"], str) and category["top"], category, f"categories[{c}].top", "a name")
        need(isinstance(category["products"], list) and category["products"], category,
             f"categories[{c}].products", "a list of objects")
        for i, product in enumerate(category["products"]):
            field = f"categories[{c}].products[{i}]"
            fields(product, field, {"path", "title", "attrs", "names"}, {"skip"})
            for key in ("path", "title"):
                need(strings([product[key]]), product, f"{field}.{key}", "a string")
            need(strings(product["attrs"], 3), product, f"{field}.attrs", "a list of three or more strings")
            fields(product["names"], f"{field}.names", set(DEMO_LANGUAGES))
            need(strings(list(product["names"].values())), product["names"], f"{field}.names", "strings")
            need(strings(product.get("skip", []), 0) and set(product.get("skip", ())) <= tags, product,
                 f"{field}.skip", f"a list of modifier tags ({', '.join(sorted(tags))})")
    need(strings(words["brands"]), words, "brands", "a list of strings")
    colours = words["colours"]
    need(isinstance(colours, dict) and set(colours) <= tags and strings(list(colours.values())), words,
         "colours", "an object from modifier tags to colour words")
    need(strings(words["other_colours"]), words, "other_colours", "a list of strings")
    need(strings(words["title_templates"]), words, "title_templates", "a list of strings")
    for i, template in enumerate(words["title_templates"]):
        named = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
        need(set(named) <= set(_TITLE_FIELDS) and "" not in named, words["title_templates"],
             f"title_templates[{i}]", "placeholders among {" + "}, {".join(_TITLE_FIELDS) + "}")
    return words


_WORDS = load_words()
PRODUCTS: tuple[Product, ...] = tuple(
    Product(category["top"], f"{category['top']},{product['path']}", product["title"], tuple(product["attrs"]),
            {lang: product["names"][lang] for lang in DEMO_LANGUAGES}, frozenset(product.get("skip", ())))
    for category in _WORDS["categories"] for product in category["products"])
# Query modifiers: (tag, template).  Colour tags also fix the colour of positive QI titles.
MODIFIERS: dict[str, tuple[tuple[str, str], ...]] = {
    lang: tuple((tag, template) for tag, template in _WORDS["modifiers"][lang]) for lang in DEMO_LANGUAGES}
_BRANDS = tuple(_WORDS["brands"])
_COLOURS = dict(_WORDS["colours"])
_OTHER_COLOURS = tuple(_WORDS["other_colours"])
_TITLE_TEMPLATES = tuple(_WORDS["title_templates"])


def _unit_hash(text: str) -> float:
    """Stable hash of a string into [0, 1) (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2**64


@lru_cache(maxsize=32)
def _query_pools(seed: int) -> dict[str, dict[str, tuple[tuple[str, int, str | None], ...]]]:
    """Per split and language, the queries as (text, product index, colour tag).

    The split is decided by a hash of the query *string* (not its language), so a
    string shared by two languages ("power bank" in en and it) still lands on one
    side only.  Train keeps only DEMO_TRAIN_LANGUAGES; a de/it query hashed to
    train is simply unused.
    """
    owner: dict[str, int] = {}
    pools: dict[str, dict[str, list]] = {s: {lang: [] for lang in DEMO_LANGUAGES} for s in SPLITS}
    for lang in DEMO_LANGUAGES:
        for idx, prod in enumerate(PRODUCTS):
            variants = [(prod.names[lang], None)]
            variants += [(tpl.format(prod.names[lang]), tag) for tag, tpl in MODIFIERS[lang] if tag not in prod.skip]
            for text, tag in variants:
                if owner.setdefault(text, idx) != idx:  # would make labels contradictory
                    raise RuntimeError(f"{WORDS_FILE}: query {text!r} names two products")
                split = "dev" if _unit_hash(f"{seed}:{text}") < DEV_QUERY_SHARE else "train"
                if split == "train" and lang not in DEMO_TRAIN_LANGUAGES:
                    continue
                pools[split][lang].append((text, idx, tag if tag in _COLOURS else None))
    return {s: {lang: tuple(v) for lang, v in by_lang.items() if v} for s, by_lang in pools.items()}


def _item_title(rng: random.Random, prod: Product, colour_tag: str | None) -> str:
    a = rng.sample(prod.attrs, 3)
    colour = _COLOURS[colour_tag] if colour_tag else rng.choice(_OTHER_COLOURS)
    tpl = rng.choice(_TITLE_TEMPLATES)
    return tpl.format(brand=rng.choice(_BRANDS), title=prod.title, a1=a[0], a2=a[1], a3=a[2], colour=colour)


def _negative_product(rng: random.Random, idx: int) -> int:
    """Another product: same top-level category (hard) or a different one (easy)."""
    top = PRODUCTS[idx].top
    same = [i for i, p in enumerate(PRODUCTS) if p.top == top and i != idx]
    other = [i for i, p in enumerate(PRODUCTS) if p.top != top]
    return rng.choice(same if same and rng.random() < HARD_NEGATIVE_RATE else other)


def generate_demo_rows(task_cfg, split: str, seed: int, n_rows: int) -> list[dict]:
    """Rows of one demo file as competition-format dicts (ids 1..n_rows).

    `task_cfg` is the task's config: its `name` goes into every row, its
    `target_field` names the target, and its `demo_targets` (one of TARGET_KINDS)
    says what the target is.
    """
    targets = task_cfg.demo_targets
    if targets not in TARGET_KINDS:
        raise ValueError(f"task {task_cfg.name}: the demo data can make {' or '.join(TARGET_KINDS)} "
                         f"(task.demo_targets), not {targets!r}; use data=competition with your own files")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    if isinstance(n_rows, bool) or not isinstance(n_rows, int) or n_rows < 1:
        raise ValueError(f"n_rows must be a positive integer, got {n_rows!r}")
    task = str(task_cfg.name)
    pools = _query_pools(int(seed))[split]
    langs = DEMO_TRAIN_LANGUAGES if split == "train" else DEMO_LANGUAGES
    rng = random.Random(f"relevance-demo:{seed}:{targets}:{split}")

    # Exact label and language proportions, shuffled; cycling through a shuffled
    # pool per language spreads rows over as many distinct queries as possible.
    n_pos = round(n_rows * POSITIVE_RATE)
    labels = [1] * n_pos + [0] * (n_rows - n_pos)
    rng.shuffle(labels)
    lang_seq = [langs[i % len(langs)] for i in range(n_rows)]
    rng.shuffle(lang_seq)
    order = {lang: rng.sample(pools[lang], len(pools[lang])) for lang in langs}
    used = dict.fromkeys(langs, 0)

    rows = []
    for i, (lang, label) in enumerate(zip(lang_seq, labels), start=1):
        text, idx, colour = order[lang][used[lang] % len(order[lang])]
        used[lang] += 1
        tidx = idx if label else _negative_product(rng, idx)
        if targets == "category_paths":
            target = PRODUCTS[tidx].path
        else:
            target = _item_title(rng, PRODUCTS[tidx], colour if label else None)
        rows.append({"id": i, "task": task, "language": lang, "origin_query": text,
                     task_cfg.target_field: target, "label": label})
    return rows


def _write_atomic(path: Path, text: str) -> None:
    with atomic_open(path, "w", newline="\n") as fh:
        fh.write(text)


#: The fields of a task's config the generator reads (`generate_demo_rows`, file names).
DEMO_TASK_FIELDS = ("name", "key", "target_field", "demo_targets")


def demo_folder_name(generate, task_cfg) -> str:
    """The folder the demo rows of these settings live in (under `<cache>/demo/`, conf/data/demo.yaml's
    `${demo_folder:${data.generate},${task}}`): ``seed{s}-train{n}-dev{m}-{digest}``, the digest keyed by
    everything that makes the rows: every generator setting (`data.generate`, whatever fields it has), the
    task fields the generator reads (`DEMO_TASK_FIELDS`), and the rows this generator makes of them (its
    word list `WORDS_FILE`, rates and code: `content_digest`). Two settings, or two generators, whose rows differ never
    share a folder; an edit that changes no row (a docstring) keeps it."""
    from omegaconf import DictConfig, OmegaConf

    settings = OmegaConf.to_container(generate, resolve=True) if isinstance(generate, DictConfig) else dict(generate)
    task = {field: (task_cfg.get(field) if hasattr(task_cfg, "get") else getattr(task_cfg, field, None))
            for field in DEMO_TASK_FIELDS}
    digest = content_digest(json.dumps(settings, sort_keys=True, default=str), json.dumps(task, sort_keys=True))
    return f"seed{settings['seed']}-train{settings['train_rows']}-dev{settings['dev_rows']}-{digest}"


@lru_cache(maxsize=64)
def content_digest(settings_json: str, task_json: str) -> str:
    """12 hex digits of the SHA-256 of the settings, the task fields and the rows `write_demo_data` writes for
    them (generated in memory: milliseconds for the demo's sizes). Settings the generator refuses are digested
    without rows: the run's config check reports them (relevance/config/checks_data.py)."""
    settings, task = json.loads(settings_json), json.loads(task_json)
    digest = hashlib.sha256(f"{settings_json}\n{task_json}".encode("utf-8"))
    try:
        for split, n_rows in (("train", settings["train_rows"]), ("dev", settings["dev_rows"])):
            rows = generate_demo_rows(_Task(**task), split, settings["seed"], n_rows)
            digest.update(json.dumps(rows, ensure_ascii=False, sort_keys=True).encode("utf-8"))
    except (ValueError, TypeError, KeyError):
        digest.update(b"refused")
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class _Task:
    name: str | None
    key: str | None
    target_field: str | None
    demo_targets: str | None


def write_demo_data(out_dir, task_cfg, seed: int = 0, train_rows: int = 480,
                    dev_rows: int = 240) -> dict[str, Path]:
    """Write ``<task key>_{train,dev}.jsonl`` into ``out_dir``; return ``{"train": path, "dev": path}``.

    Same seed gives byte-identical files.  Each file is written to a temporary
    name and renamed, so a concurrent reader never sees half a file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for split, n in (("train", train_rows), ("dev", dev_rows)):
        rows = generate_demo_rows(task_cfg, split, seed, n)
        path = out / f"{task_cfg.key}_{split}.jsonl"
        _write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        paths[split] = path
    return paths
