"""Small generated QC/QI data in the competition format, for demos and tests.

Nothing is downloaded: rows are built from the hand-written lexicon below, so the
whole pipeline can run offline and in CI.  The data imitates the real task's
shape where it matters for the code paths:

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

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from relevance.files import atomic_open


DEMO_TRAIN_LANGUAGES = ("en", "es", "fr", "ja", "ko", "pt")
DEMO_DEV_ONLY_LANGUAGES = ("de", "it")
DEMO_LANGUAGES = DEMO_TRAIN_LANGUAGES + DEMO_DEV_ONLY_LANGUAGES
SPLITS = ("train", "dev")
#: What the lexicon can pair a query with; a task's YAML picks one as `demo_targets`.
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


def _p(top, leaf_path, title, attrs, names, skip=()):
    langs = tuple(names)
    assert langs == DEMO_LANGUAGES, (title, langs)
    return Product(top, f"{top},{leaf_path}", title, tuple(attrs), dict(names), frozenset(skip))


_SPORT = "sports & entertainment"
_ELEC = "consumer electronics"
_PHONE = "cellphones & telecommunications"
_APPL = "home appliances"
_KIDS = "mother & kids"
_HOME = "home & garden"
_WOMEN = "women's clothing"
_MEN = "men's clothing"
_BEAUTY = "beauty & health"
_AUTO = "automobiles, parts & accessories"

# Name order in every dict: en es fr ja ko pt de it (checked by _p).
PRODUCTS: tuple[Product, ...] = (
    _p(_SPORT, "sneakers,running shoes", "Running Shoes",
       ["Breathable Mesh", "Lightweight", "Non-Slip Sole", "Cushioned", "Size 42"],
       dict(en="running shoes", es="zapatillas para correr", fr="chaussures de course", ja="ランニングシューズ",
            ko="러닝화", pt="tênis de corrida", de="laufschuhe", it="scarpe da corsa")),
    _p(_SPORT, "fitness & body building,yoga mats", "Yoga Mat",
       ["6mm Thick", "Non-Slip", "TPE Eco-Friendly", "183x61cm", "With Carry Strap"],
       dict(en="yoga mat", es="esterilla de yoga", fr="tapis de yoga", ja="ヨガマット",
            ko="요가 매트", pt="tapete de yoga", de="yogamatte", it="tappetino yoga")),
    _p(_SPORT, "cycling,bicycle helmet", "Bike Helmet",
       ["Adjustable", "Ventilated", "Ultralight", "With LED Light", "Adult"],
       dict(en="bike helmet", es="casco de bicicleta", fr="casque de vélo", ja="自転車 ヘルメット",
            ko="자전거 헬멧", pt="capacete de bicicleta", de="fahrradhelm", it="casco bici")),
    _p(_SPORT, "fishing,fishing rods", "Fishing Rod",
       ["Carbon Fiber", "Telescopic", "2.1m", "Spinning", "Portable"],
       dict(en="fishing rod", es="caña de pescar", fr="canne à pêche", ja="釣り竿",
            ko="낚싯대", pt="vara de pesca", de="angelrute", it="canna da pesca")),
    _p(_ELEC, "earphones & headphones,bluetooth earphones & headphones", "Wireless Earbuds",
       ["Bluetooth 5.3", "Noise Cancelling", "Touch Control", "IPX5 Waterproof", "40H Playtime"],
       dict(en="wireless earbuds", es="auriculares inalámbricos", fr="écouteurs sans fil", ja="ワイヤレスイヤホン",
            ko="무선 이어폰", pt="fone de ouvido sem fio", de="kabellose kopfhörer", it="auricolari wireless")),
    _p(_ELEC, "smart electronics,wearable devices,smart watches", "Smart Watch",
       ["Heart Rate Monitor", "1.9 Inch HD", "Fitness Tracker", "IP68", "Bluetooth Call"],
       dict(en="smart watch", es="reloj inteligente", fr="montre connectée", ja="スマートウォッチ",
            ko="스마트 워치", pt="relógio inteligente", de="smartwatch", it="orologio smart")),
    _p(_ELEC, "camera & photo,tripods", "Camera Tripod",
       ["Aluminum", "Adjustable Height", "160cm", "With Phone Holder", "Travel"],
       dict(en="camera tripod", es="trípode para cámara", fr="trépied appareil photo", ja="カメラ 三脚",
            ko="카메라 삼각대", pt="tripé para câmera", de="kamerastativ", it="treppiede fotocamera")),
    _p(_ELEC, "portable audio & video,speakers", "Bluetooth Speaker",
       ["Portable", "Waterproof", "20W Bass", "RGB Light", "TWS Pairing"],
       dict(en="bluetooth speaker", es="altavoz bluetooth", fr="enceinte bluetooth", ja="ブルートゥーススピーカー",
            ko="블루투스 스피커", pt="caixa de som bluetooth", de="bluetooth lautsprecher", it="cassa bluetooth")),
    _p(_PHONE, "mobile phone accessories,phone case & covers", "Phone Case",
       ["Shockproof", "Silicone", "Transparent", "Slim Fit", "Magnetic"],
       dict(en="phone case", es="funda de móvil", fr="coque de téléphone", ja="スマホケース",
            ko="휴대폰 케이스", pt="capinha de celular", de="handyhülle", it="cover cellulare")),
    _p(_PHONE, "mobile phone accessories,mobile phone chargers", "Phone Charger",
       ["65W GaN", "USB-C Fast Charging", "Dual Port", "EU Plug", "PD 3.0"],
       dict(en="phone charger", es="cargador de móvil", fr="chargeur de téléphone", ja="スマホ 充電器",
            ko="휴대폰 충전기", pt="carregador de celular", de="handy ladegerät", it="caricabatterie cellulare")),
    _p(_PHONE, "mobile phone accessories,phone screen protectors", "Screen Protector",
       ["Tempered Glass", "9H Hardness", "Anti-Fingerprint", "Full Cover", "2 Pack"],
       dict(en="screen protector", es="protector de pantalla", fr="protection d'écran", ja="画面保護フィルム",
            ko="액정 보호 필름", pt="película protetora", de="displayschutzfolie", it="pellicola protettiva")),
    _p(_PHONE, "mobile phone accessories,power bank", "Power Bank",
       ["20000mAh", "Fast Charging", "LED Display", "Slim", "22.5W"],
       dict(en="power bank", es="batería externa", fr="batterie externe", ja="モバイルバッテリー",
            ko="보조배터리", pt="bateria portátil", de="powerbank", it="power bank")),
    _p(_APPL, "kitchen appliances,coffee makers", "Coffee Maker",
       ["Drip", "1.5L", "Programmable", "Anti-Drip", "800W"],
       dict(en="coffee maker", es="cafetera", fr="cafetière", ja="コーヒーメーカー",
            ko="커피 메이커", pt="cafeteira", de="kaffeemaschine", it="macchina da caffè")),
    _p(_APPL, "kitchen appliances,electric kettles", "Electric Kettle",
       ["Stainless Steel", "1.7L", "Auto Shut-Off", "Fast Boil", "1500W"],
       dict(en="electric kettle", es="hervidor eléctrico", fr="bouilloire électrique", ja="電気ケトル",
            ko="전기 포트", pt="chaleira elétrica", de="wasserkocher", it="bollitore elettrico")),
    _p(_APPL, "cleaning appliances,vacuum cleaners", "Vacuum Cleaner",
       ["Cordless", "Handheld", "25000Pa Suction", "Cyclonic", "Rechargeable"],
       dict(en="vacuum cleaner", es="aspiradora", fr="aspirateur", ja="掃除機",
            ko="진공 청소기", pt="aspirador de pó", de="staubsauger", it="aspirapolvere")),
    _p(_APPL, "personal care appliances,hair dryers", "Hair Dryer",
       ["Ionic", "2000W", "Foldable", "With Diffuser", "Quick Dry"],
       dict(en="hair dryer", es="secador de pelo", fr="sèche-cheveux", ja="ドライヤー",
            ko="헤어 드라이기", pt="secador de cabelo", de="haartrockner", it="asciugacapelli")),
    _p(_KIDS, "activity & gear,strollers", "Baby Stroller",
       ["Foldable", "Lightweight", "Reclining Seat", "Travel System", "0-36 Months"],
       dict(en="baby stroller", es="carrito de bebé", fr="poussette bébé", ja="ベビーカー",
            ko="유모차", pt="carrinho de bebê", de="kinderwagen", it="passeggino"),
       skip=("men", "women")),
    _p(_KIDS, "feeding,baby bottles", "Baby Bottle",
       ["Anti-Colic", "BPA Free", "240ml", "Wide Neck", "Silicone Nipple"],
       dict(en="baby bottle", es="biberón", fr="biberon", ja="哺乳瓶",
            ko="젖병", pt="mamadeira", de="babyflasche", it="biberon neonato"),
       skip=("men", "women")),
    _p(_KIDS, "nappy changing,disposable diapers", "Baby Diapers",
       ["Size M", "Ultra Soft", "Leak Proof", "60 Pcs", "Breathable"],
       dict(en="baby diapers", es="pañales", fr="couches bébé", ja="紙おむつ",
            ko="기저귀", pt="fraldas descartáveis", de="windeln", it="pannolini"),
       skip=("men", "women")),
    _p(_HOME, "home textile,bedding,sheets", "Bed Sheet Set",
       ["100% Cotton", "Queen Size", "4 Pieces", "Soft", "Deep Pocket"],
       dict(en="bed sheets", es="sábanas", fr="draps de lit", ja="ベッドシーツ",
            ko="침대 시트", pt="lençol de cama", de="bettlaken", it="lenzuola")),
    _p(_HOME, "kitchen,dining & bar,cookware,pans", "Frying Pan",
       ["Non-Stick", "28cm", "Induction Compatible", "Granite Coating", "With Lid"],
       dict(en="frying pan", es="sartén", fr="poêle à frire", ja="フライパン",
            ko="프라이팬", pt="frigideira", de="bratpfanne", it="padella")),
    _p(_HOME, "garden supplies,watering & irrigation,garden hoses", "Garden Hose",
       ["Expandable", "30m", "With Spray Nozzle", "Leak Proof", "Flexible"],
       dict(en="garden hose", es="manguera de jardín", fr="tuyau d'arrosage", ja="ガーデンホース",
            ko="정원 호스", pt="mangueira de jardim", de="gartenschlauch", it="tubo da giardino")),
    _p(_HOME, "home decor,candles", "Scented Candle",
       ["Soy Wax", "Lavender", "Glass Jar", "50H Burn", "Gift Set"],
       dict(en="scented candle", es="vela aromática", fr="bougie parfumée", ja="アロマキャンドル",
            ko="향초", pt="vela aromática perfumada", de="duftkerze", it="candela profumata")),
    _p(_WOMEN, "dresses", "Summer Dress",
       ["Floral Print", "Midi", "V-Neck", "Short Sleeve", "Casual"],
       dict(en="summer dress", es="vestido de verano", fr="robe d'été", ja="夏 ワンピース",
            ko="여름 원피스", pt="vestido de verão", de="sommerkleid", it="vestito estivo"),
       skip=("men",)),
    _p(_WOMEN, "sweaters,cardigans", "Knit Cardigan",
       ["Oversized", "Button Up", "Long Sleeve", "Wool Blend", "V-Neck"],
       dict(en="cardigan", es="cárdigan", fr="gilet en maille", ja="カーディガン",
            ko="가디건", pt="cardigã", de="strickjacke", it="cardigan donna"),
       skip=("men",)),
    _p(_MEN, "jeans", "Slim Fit Jeans",
       ["Stretch Denim", "Straight Leg", "Washed", "W32 L32", "Classic"],
       dict(en="slim jeans", es="vaqueros ajustados", fr="jean slim", ja="スリムジーンズ",
            ko="슬림 청바지", pt="calça jeans slim", de="slim fit jeans", it="jeans slim"),
       skip=("women",)),
    _p(_MEN, "jackets & coats,parkas", "Winter Jacket",
       ["Hooded", "Fleece Lined", "Windproof", "Puffer", "Warm Parka"],
       dict(en="winter jacket", es="chaqueta de invierno", fr="veste d'hiver", ja="冬 ジャケット",
            ko="겨울 자켓", pt="jaqueta de inverno", de="winterjacke", it="giacca invernale"),
       skip=("women",)),
    _p(_BEAUTY, "makeup,lips,lipstick", "Matte Lipstick",
       ["Long Lasting", "Waterproof", "Velvet", "Nude Shade", "Moisturizing"],
       dict(en="lipstick", es="pintalabios", fr="rouge à lèvres", ja="口紅",
            ko="립스틱", pt="batom", de="lippenstift", it="rossetto")),
    _p(_BEAUTY, "skin care,sun care,sunscreen", "Sunscreen Cream",
       ["SPF 50+", "PA++++", "Water Resistant", "50ml", "Lightweight"],
       dict(en="sunscreen", es="protector solar", fr="crème solaire", ja="日焼け止め",
            ko="선크림", pt="protetor solar", de="sonnencreme", it="crema solare")),
    _p(_BEAUTY, "oral hygiene,electric toothbrushes", "Electric Toothbrush",
       ["Sonic", "5 Modes", "USB Rechargeable", "With 4 Brush Heads", "IPX7"],
       dict(en="electric toothbrush", es="cepillo de dientes eléctrico", fr="brosse à dents électrique",
            ja="電動歯ブラシ", ko="전동 칫솔", pt="escova de dentes elétrica", de="elektrische zahnbürste",
            it="spazzolino elettrico")),
    _p(_AUTO, "interior accessories,automobiles seat covers", "Car Seat Cover",
       ["Universal Fit", "PU Leather", "Full Set", "Breathable", "5 Seats"],
       dict(en="car seat cover", es="funda para asiento de coche", fr="housse de siège auto", ja="車 シートカバー",
            ko="자동차 시트커버", pt="capa de banco de carro", de="autositzbezug", it="coprisedile auto")),
    _p(_AUTO, "tools,tire inflators", "Tire Inflator",
       ["Portable", "12V", "Digital Gauge", "150 PSI", "Auto Shut-Off"],
       dict(en="tire inflator", es="inflador de neumáticos", fr="gonfleur de pneus", ja="タイヤ 空気入れ",
            ko="타이어 공기주입기", pt="compressor de ar para pneu", de="reifenpumpe", it="compressore pneumatici")),
)

# Query modifiers: (tag, template).  Colour tags also fix the colour of positive QI titles.
MODIFIERS: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (("black", "black {}"), ("pink", "pink {}"), ("men", "{} for men"), ("women", "{} for women"),
           ("cheap", "cheap {}"), ("original", "original {}")),
    "es": (("black", "{} negro"), ("pink", "{} rosa"), ("men", "{} para hombre"), ("women", "{} para mujer"),
           ("cheap", "{} barato"), ("original", "{} original")),
    "fr": (("black", "{} noir"), ("pink", "{} rose"), ("men", "{} homme"), ("women", "{} femme"),
           ("cheap", "{} pas cher"), ("original", "{} original")),
    "ja": (("black", "{} 黒"), ("pink", "{} ピンク"), ("men", "{} メンズ"), ("women", "{} レディース"),
           ("cheap", "{} 安い"), ("original", "{} 純正")),
    "ko": (("black", "검정 {}"), ("pink", "핑크 {}"), ("men", "남성 {}"), ("women", "여성 {}"),
           ("cheap", "저렴한 {}"), ("original", "정품 {}")),
    "pt": (("black", "{} preto"), ("pink", "{} rosa"), ("men", "{} masculino"), ("women", "{} feminino"),
           ("cheap", "{} barato"), ("original", "{} original")),
    "de": (("black", "{} schwarz"), ("pink", "{} rosa"), ("men", "{} herren"), ("women", "{} damen"),
           ("cheap", "{} günstig"), ("original", "{} original")),
    "it": (("black", "{} nero"), ("pink", "{} rosa"), ("men", "{} uomo"), ("women", "{} donna"),
           ("cheap", "{} economico"), ("original", "{} originale")),
}

_BRANDS = ("Xiaomo", "Lumeo", "Vantix", "Orrin", "Kavo", "Nuvira", "Zentra", "Bolde", "Qiyue", "Marlo")
_COLOURS = {"black": "Black", "pink": "Pink"}
_OTHER_COLOURS = ("Black", "White", "Blue", "Grey", "Green", "Red", "Pink")
_TITLE_TEMPLATES = (
    "{brand} {title} {a1} {a2} {colour}",
    "{brand} {a1} {title} {a2} {colour}",
    "{title} {a1} {a2} {a3} {colour} - {brand}",
    "2024 New {brand} {title} {a1} {colour}",
)


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
                    raise RuntimeError(f"demo lexicon: query {text!r} names two products")
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
    lexicon, rates and code: `content_digest`). Two settings, or two generators, whose rows differ never
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
    without rows: the run's config check reports them (relevance/config.py)."""
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
