"""Immutable vocabularies for the simulated shop: people, places, products, promos.

Each name comes with an ASCII spelling so that emails stay plausible (``José`` → ``jose``).
"""

# Long table lines and look-alike letters (Cyrillic, Greek, dotless i) are the data itself.
# ruff: noqa: E501, RUF001

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple


class Locale(NamedTuple):
    countries: tuple[str, ...]  # ISO 3166-1 alpha-2
    first: tuple[tuple[str, str], ...]  # (display, ascii)
    last: tuple[tuple[str, str], ...]
    weight: int
    family_first: bool  # East Asian order: family name first, no space


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    """``"José/jose Ana"`` → ``(("José", "jose"), ("Ana", "ana"))``; ``_`` stands for a space."""
    pairs = []
    for token in text.split():
        display, _, ascii_name = token.partition("/")
        pairs.append((display.replace("_", " "), ascii_name or display.lower()))
    return tuple(pairs)


def _locales(table: str) -> tuple[Locale, ...]:
    """One locale a line: ``countries | first names | family names | weight [| family-first]``."""
    locales = []
    for line in table.strip().splitlines():
        countries, first, last, weight, *order = (part.strip() for part in line.split("|"))
        locales.append(
            Locale(tuple(countries.split()), _pairs(first), _pairs(last), int(weight), bool(order))
        )
    return tuple(locales)


# fmt: off
LOCALES = _locales("""
ES MX AR CO CL PE UY EC | José/jose María/maria Lucía/lucia Martín/martin Sofía/sofia Andrés/andres Camila Mateo Valentina Joaquín/joaquin Inés/ines Raúl/raul | García/garcia Rodríguez/rodriguez Martínez/martinez López/lopez Pérez/perez Gómez/gomez Núñez/nunez Ibáñez/ibanez Castaño/castano Muñoz/munoz Ortiz Vargas | 18
US GB IE AU NZ CA ZA | James Olivia Emma Liam Noah Ava Siobhán/siobhan Seán/sean Aoife Chloe Ethan Grace | Smith Johnson O'Brien/obrien Williams Brown Taylor Murphy Walsh Nguyen Clarke | 22
DE AT CH | Jürgen/juergen Lena Jörg/joerg Anna Björn/bjoern Claudia Maximilian Greta | Müller/mueller Schröder/schroeder Weiß/weiss Groß/gross Bauer Köhler/koehler Fischer Hoffmann | 9
FR BE CH CA LU | Zoë/zoe Chloé/chloe François/francois Hélène/helene Théo/theo Amélie/amelie Jérôme/jerome Léa/lea | Lefèvre/lefevre Dubois Moreau Girard Bélanger/belanger Fontaine Mercier | 8
PL | Łukasz/lukasz Małgorzata/malgorzata Paweł/pawel Agnieszka Wojciech Zofia | Kowalski Wiśniewski/wisniewski Wójcik/wojcik Dąbrowski/dabrowski Lewandowski Zieliński/zielinski | 4
DK NO SE FI IS | Søren/soren Åsa/asa Ingrid Lars Sigrid Mikael Jørgen/jorgen Elin | Jensen Nielsen Sørensen/sorensen Lindqvist Åberg/aberg Johansson Virtanen Mäkinen/makinen | 4
BR PT AO | João/joao Conceição/conceicao Gonçalo/goncalo Ana Luís/luis Beatriz Thiago | Gonçalves/goncalves Araújo/araujo Simões/simoes Silva Santos Pereira Magalhães/magalhaes | 8
IT SM | Niccolò/niccolo Giulia Francesca Lorenzo Matteo Chiara | Rossi Russo Ferrari Esposito Bianchi De_Luca/deluca | 4
JP | 太郎/taro 花子/hanako 翔太/shota 陽菜/hina 健/ken | 山田/yamada 佐藤/sato 鈴木/suzuki 高橋/takahashi 田中/tanaka | 4 | family-first
CN SG TW | 伟/wei 芳/fang 娜/na 敏/min 静/jing | 王/wang 李/li 张/zhang 刘/liu 陈/chen | 4 | family-first
KR | 민준/minjun 서연/seoyeon 지훈/jihoon 하은/haeun | 김/kim 이/lee 박/park 최/choi | 2 | family-first
GR CY | Γιώργος/giorgos Μαρία/maria Νίκος/nikos Ελένη/eleni | Παπαδόπουλος/papadopoulos Οικονόμου/oikonomou Γεωργίου/georgiou | 2
TR | Çağrı/cagri Gülşen/gulsen Ömer/omer Şule/sule Emre | Yılmaz/yilmaz Öztürk/ozturk Çelik/celik Şahin/sahin Demir | 3
CZ SK | Jiří/jiri Tereza Lukáš/lukas Barbora | Dvořák/dvorak Novák/novak Černý/cerny Svoboda | 2
IN | Aarav Priya Rohan Ananya Vikram | Sharma Patel Iyer Reddy Banerjee | 5
EG AE MA SA JO | Ahmed Fatima Youssef Layla Omar | Hassan El-Amin/elamin Haddad Mansour Khalil | 3
UA | Олена/olena Андрій/andrii Тарас/taras | Шевченко/shevchenko Коваленко/kovalenko Бондаренко/bondarenko | 2
NG KE GH | Chinedu Amara Kwame Wanjiru Adaeze | Okafor Mensah Otieno Adeyemi | 3
NL BE | Sanne Daan Bram Femke | de_Vries/devries van_Dijk/vandijk Jansen Bakker | 3
HU RO | Zoltán/zoltan Réka/reka Ștefan/stefan Ioana | Nagy Kovács/kovacs Szűcs/szucs Popescu Țurcanu/turcanu | 2
""")
# fmt: on

EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com", "shop.example")

EURO_COUNTRIES = frozenset(
    ("ES", "DE", "AT", "FR", "BE", "LU", "IT", "SM", "PT", "FI", "GR", "CY", "NL", "IE", "SK")
)
COUNTRY_CURRENCY = MappingProxyType({"GB": "GBP", "MX": "MXN", "BR": "BRL", "CA": "CAD"})
# Where users move when not to a neighbour of their locale; repeats weigh the common ones.
MOVES_TO = (
    "US", "US", "US", "GB", "GB", "GB", "DE", "DE", "FR", "ES", "CA", "CA", "MX", "MX", "BR",
    "BR", "NL", "IE", "AU", "PT", "IT", "JP", "SG", "AE", "CH", "SE",
)  # fmt: skip


class Category(NamedTuple):
    name: str
    nouns: tuple[str, ...]
    min_price: float
    max_price: float


CATEGORIES: tuple[Category, ...] = (
    Category(
        "Electronics",
        (
            "Wireless Earbuds",
            "USB-C Cable, 2 m",
            "Bluetooth Speaker",
            "Smartwatch",
            'Monitor 27"',
            "Mechanical Keyboard",
            "Power Bank",
            "HDMI Adapter",
        ),
        8,
        450,
    ),
    Category(
        "Books",
        ("Cookbook", "Novel", "Travel Guide", "Children's Book", "Poetry Collection", "Atlas"),
        6,
        45,
    ),
    Category(
        "Home & Kitchen",
        (
            "Coffee Grinder",
            "Chef's Knife",
            "Cast Iron Skillet",
            "Bed Sheets, Queen",
            "Tea Kettle",
            "Espresso Cups (4)",
        ),
        10,
        250,
    ),
    Category(
        "Toys & Games",
        ("Puzzle, 1000 pieces", "Board Game", "Building Blocks", "Plush Bear"),
        5,
        90,
    ),
    Category(
        "Sports & Outdoors", ("Yoga Mat", "Water Bottle", "Running Shoes", "Tent, 2-person"), 8, 300
    ),
    Category("Beauty", ("Shampoo", "Face Cream", "Lip Balm", "Eau de Parfum"), 3, 120),
    Category(
        "Grocery",
        (
            "Café Molido",
            "Olive Oil, Extra Virgin",
            "Dark Chocolate 70%",
            "Green Tea",
            "Dulce de Leche",
        ),
        2,
        35,
    ),
    Category("Clothing", ("T-Shirt", "Hoodie", "Jeans", "Scarf", "Rain Jacket"), 9, 150),
    Category("Garden", ("Pruning Shears", "Seed Kit", "Garden Hose, 15 m"), 5, 120),
    Category("Office", ("Notebook A5", "Gel Pens, 12-pack", "Desk Lamp", "Stapler"), 2, 80),
    Category("Pet Supplies", ("Dog Leash", "Cat Scratcher", "Bird Feeder"), 4, 70),
)

BRANDS = (
    "Acme",
    "Nordwind",
    "Lumière",
    "Kōbō",
    "Sakura",
    "Zephyr",
    "Brío",
    "Ångström",
    "Vértice",
    "Polaris",
    "Tundra",
    "Mañana",
)
VARIANTS = ("", "", "", " – Blue", " (2-pack)", ' "Pro"', ", Large", " Mini")

# code → discount in percent; some codes are not ASCII on purpose (escaping must not matter).
PROMOS: tuple[tuple[str, int], ...] = (
    ("BF25", 25),
    ("WELCOME10", 10),
    ("SUMMER15", 15),
    ("FREESHIP", 0),
    ("ÉTÉ20", 20),
    ("NAVIDAD🎄", 12),
    ("SOMMER-ÄÖ", 18),
    ("FLASH5", 5),
    ("VUELTA-AL-COLE", 10),
    ("新春8", 8),
)
SOURCES = ("web", "app", "marketplace", "store")
SOURCE_WEIGHTS = (45, 35, 12, 8)
STORES = (
    "Málaga Centro",
    "Köln Hbf",
    "Kraków Rynek",
    "São Paulo Paulista",
    "Zürich HB",
    "東京 銀座",
    "Montréal",
    "Reykjavík",
)
CITIES = (
    "Málaga",
    "Zürich",
    "Göteborg",
    "Besançon",
    "Logroño",
    "Kraków",
    "Łódź",
    "Ürümqi",
    "Lisboa",
    "Austin",
)
LATIN1_CITIES = ("Málaga", "Zürich", "Göteborg", "Besançon", "Logroño")
SHIPPING_METHODS = ("standard", "express", "pickup")
SHIPPING_FEES = (399, 499, 590, 999)  # cents
# Real offsets, including the odd half and quarter hours.
OFFSETS: tuple[tuple[str, int], ...] = (
    ("+02:00", 120),
    ("+01:00", 60),
    ("-05:00", -300),
    ("-03:00", -180),
    ("+05:30", 330),
    ("-05:30", -330),
    ("+09:00", 540),
    ("+00:00", 0),
    ("-08:00", -480),
    ("+05:45", 345),
    ("-03:30", -210),
    ("+10:00", 600),
)
