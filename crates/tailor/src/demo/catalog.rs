//! The demo catalog: products as the seeder sees them (built in, or read from goodbooks by
//! [`super::goodbooks`]), with what shoppers need to pick among them: Zipf-skewed popularity
//! within each category and the items each product is bought together with.
//!
//! The built-in catalog is the same on every run (its own fixed seed), so an item id always
//! names the same product; `--seed` only changes the shoppers.

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// Currency of every demo price.
pub const CURRENCY: &str = "CNY";

/// Exponent of the Zipf law of item popularity within a category: the k-th most popular
/// item is picked about 1/k^1.1 as often as the first.
const ZIPF_EXPONENT: f64 = 1.1;

/// Length of the synthetic image embeddings.
const EMBEDDING_DIMS: usize = 16;

/// Seed of the built-in catalog (fixed: see the module docs).
const CATALOG_SEED: u64 = 2026;

/// One product as the demo uploads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// Stable id, e.g. `demo-phones-003` or `gb-17`.
    pub item_id: String,
    /// Display title (English or Chinese).
    pub title: String,
    /// Description; products of one category share much of its vocabulary.
    pub description: String,
    /// Category path, e.g. `electronics/phones`.
    pub category: String,
    /// Brand (the first author for books).
    pub brand: String,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// Price in fen (CNY minor units).
    pub price_minor: i64,
    /// Whether it can be bought now.
    pub available: bool,
    /// Units in stock (0 when unavailable).
    pub stock: i64,
    /// Image URL: a `data:` SVG tile for the built-in catalog, so it shows offline.
    pub image_url: String,
    /// Image embedding (empty when the catalog has none).
    pub embedding: Vec<f32>,
    /// What a shopper types to find it: English, then Chinese when there is a Chinese name.
    pub keywords: Vec<String>,
}

/// Products plus the indexes shoppers sample from.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Every product.
    pub products: Vec<Product>,
    /// Distinct categories, sorted.
    pub categories: Vec<String>,
    /// Index into `categories` of each product.
    pub category_of: Vec<usize>,
    /// Products of each category, most popular first.
    by_category: Vec<Vec<usize>>,
    /// Cumulative Zipf weights matching `by_category`.
    cumulative: Vec<Vec<f64>>,
    /// Median price of each category, the yardstick of price sensitivity.
    median_price: Vec<i64>,
    /// Products bought together with each product.
    pub companions: Vec<Vec<usize>>,
    /// Hash of the item ids, prices and categories (FNV-1a).
    fingerprint: u64,
}

impl Catalog {
    /// Indexes `products`: `popularity` (higher is more popular) orders each category for the
    /// Zipf law; `companions` lists, per product, products bought with it.
    pub fn new(products: Vec<Product>, popularity: &[f64], companions: Vec<Vec<usize>>) -> Self {
        let mut categories: Vec<String> = products.iter().map(|p| p.category.clone()).collect();
        categories.sort();
        categories.dedup();
        let category_of: Vec<usize> = products
            .iter()
            .map(|p| categories.partition_point(|c| c < &p.category))
            .collect();
        let mut by_category = vec![Vec::new(); categories.len()];
        for (i, &c) in category_of.iter().enumerate() {
            by_category[c].push(i);
        }
        let mut cumulative = Vec::with_capacity(categories.len());
        let mut median_price = Vec::with_capacity(categories.len());
        for items in &mut by_category {
            let score = |i: usize| popularity.get(i).copied().unwrap_or(0.0);
            // Ties broken by position, so the order never depends on the sort algorithm.
            items.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
            let mut total = 0.0;
            cumulative.push(
                (0..items.len())
                    .map(|rank| {
                        total += 1.0 / ((rank + 1) as f64).powf(ZIPF_EXPONENT);
                        total
                    })
                    .collect(),
            );
            let mut prices: Vec<i64> = items.iter().map(|&i| products[i].price_minor).collect();
            prices.sort_unstable();
            median_price.push(prices.get(prices.len() / 2).copied().unwrap_or(1).max(1));
        }
        let mut fingerprint: u64 = 0xcbf2_9ce4_8422_2325;
        for p in &products {
            let price = p.price_minor.to_le_bytes();
            for byte in p.item_id.bytes().chain(p.category.bytes()).chain(price) {
                fingerprint = (fingerprint ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
            }
        }
        Self {
            fingerprint,
            products,
            categories,
            category_of,
            by_category,
            cumulative,
            median_price,
            companions,
        }
    }

    /// A product of `category`, drawn by the Zipf law (None for an empty category).
    pub fn pick(&self, category: usize, rng: &mut StdRng) -> Option<usize> {
        let cumulative = self.cumulative.get(category)?;
        let total = *cumulative.last()?;
        let at = rng.random::<f64>() * total;
        let rank = cumulative
            .partition_point(|&c| c <= at)
            .min(cumulative.len() - 1);
        self.by_category[category].get(rank).copied()
    }

    /// A hash of the catalog's ids, categories and prices: equal catalogs, equal hashes.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Number of products in each category.
    pub fn category_sizes(&self) -> Vec<usize> {
        self.by_category.iter().map(Vec::len).collect()
    }

    /// The product's price relative to its category's median (1.0 = typical).
    pub fn relative_price(&self, product: usize) -> f64 {
        let median = self.median_price[self.category_of[product]];
        self.products[product].price_minor as f64 / median as f64
    }
}

/// A `data:` URL of a small SVG tile: `colour` with `letter` on it. Works without internet,
/// so the storefront shows something for every demo product.
pub fn tile(colour: &str, letter: char) -> String {
    let svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='240' height='240' viewBox='0 0 240 240'>\
         <rect width='240' height='240' rx='24' fill='{colour}'/>\
         <text x='120' y='158' font-family='sans-serif' font-size='120' font-weight='bold' \
         text-anchor='middle' fill='#ffffff'>{letter}</text></svg>"
    );
    format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

/// One kind of product within a category: names, price range and how many to make.
struct Kind {
    en: &'static str,
    zh: &'static str,
    /// Price range in yuan.
    yuan: (u32, u32),
    count: usize,
    /// Model names for products (`brand noun variant`); for books, whole titles.
    variants: &'static [&'static str],
}

/// One category of the built-in catalog.
struct Category {
    path: &'static str,
    colour: &'static str,
    /// Brands; authors for books.
    brands: &'static [&'static str],
    kinds: &'static [Kind],
    /// Description phrases (English, Chinese) shared by the category: the overlapping
    /// vocabulary that TF-IDF content similarity finds.
    phrases: &'static [(&'static str, &'static str)],
    tags: &'static [&'static str],
    /// Titles are the variants themselves (books), not `brand noun variant`.
    whole_titles: bool,
}

const fn kind(
    en: &'static str,
    zh: &'static str,
    yuan: (u32, u32),
    count: usize,
    variants: &'static [&'static str],
) -> Kind {
    Kind {
        en,
        zh,
        yuan,
        count,
        variants,
    }
}

const CATEGORIES: &[Category] = &[
    Category {
        path: "electronics/phones",
        colour: "#3b82f6",
        brands: &["Lumio", "Novaphone", "Zhiyun 智云", "Orbit", "Kestrel"],
        kinds: &[
            kind(
                "smartphone",
                "智能手机",
                (1499, 6999),
                16,
                &[
                    "X12",
                    "X12 Pro",
                    "Note 9",
                    "Mini 5",
                    "Ultra 2",
                    "Lite 5G",
                    "S30 256GB",
                    "Fold 3",
                    "Max 512GB",
                ],
            ),
            kind(
                "rugged phone",
                "三防手机",
                (999, 2499),
                3,
                &["Tough 2", "Outdoor 5G"],
            ),
            kind(
                "senior phone",
                "老人手机",
                (199, 599),
                3,
                &["Easy 4G", "Big Button"],
            ),
        ],
        phrases: &[
            ("all-day battery with fast charging", "长续航，支持快充"),
            ("6.7-inch OLED display at 120Hz", "6.7英寸OLED屏，120Hz高刷"),
            (
                "50MP main camera with night mode",
                "5000万像素主摄，夜景模式",
            ),
            ("dual SIM, 5G and Wi-Fi 6", "双卡双待，5G，Wi-Fi 6"),
            (
                "face unlock and in-screen fingerprint",
                "面部解锁，屏下指纹",
            ),
        ],
        tags: &["5g", "smartphone", "android", "camera", "oled"],
        whole_titles: false,
    },
    Category {
        path: "electronics/accessories",
        colour: "#6366f1",
        brands: &[
            "Lumio",
            "Novaphone",
            "Zhiyun 智云",
            "VoltEdge",
            "Shellcraft",
        ],
        kinds: &[
            kind(
                "phone case",
                "手机壳",
                (29, 129),
                10,
                &[
                    "clear",
                    "leather",
                    "silicone",
                    "rugged",
                    "magnetic",
                    "matte black",
                ],
            ),
            kind(
                "fast charger",
                "快充充电器",
                (59, 199),
                8,
                &["65W GaN", "33W", "120W", "dual port 45W"],
            ),
            kind(
                "screen protector",
                "钢化膜",
                (19, 69),
                6,
                &["tempered glass", "privacy", "2-pack"],
            ),
            kind(
                "power bank",
                "充电宝",
                (79, 299),
                6,
                &["10000mAh", "20000mAh", "magnetic 5000mAh"],
            ),
            kind(
                "charging cable",
                "数据线",
                (19, 79),
                5,
                &["USB-C 1m", "USB-C 2m", "braided"],
            ),
        ],
        phrases: &[
            ("compatible with most smartphones", "适配主流手机"),
            ("supports fast charging protocols", "支持快充协议"),
            ("drop protection and scratch resistance", "防摔防刮"),
            ("slim, light and easy to carry", "轻薄便携"),
            ("USB-C port", "USB-C接口"),
        ],
        tags: &["phone-accessory", "usb-c", "charging", "protection"],
        whole_titles: false,
    },
    Category {
        path: "electronics/audio",
        colour: "#8b5cf6",
        brands: &["SoundJoy 声悦", "Echora", "Lumio", "Basswave", "Kestrel"],
        kinds: &[
            kind(
                "wireless earbuds",
                "无线蓝牙耳机",
                (99, 1299),
                12,
                &["Air 3", "Pro 2", "ANC", "Lite", "Sport", "Buds 5"],
            ),
            kind(
                "over-ear headphones",
                "头戴式降噪耳机",
                (299, 2499),
                7,
                &["Studio", "ANC 700", "Travel", "Wireless 2"],
            ),
            kind(
                "bluetooth speaker",
                "蓝牙音箱",
                (99, 899),
                6,
                &["Mini", "Boom", "Outdoor", "Home 360"],
            ),
            kind(
                "earbud case",
                "耳机保护套",
                (19, 49),
                3,
                &["silicone", "leather"],
            ),
        ],
        phrases: &[
            ("active noise cancellation", "主动降噪"),
            ("Bluetooth 5.3 with low latency", "蓝牙5.3，低延迟"),
            (
                "30-hour battery life with the charging case",
                "配合充电盒续航30小时",
            ),
            ("deep bass and clear vocals", "低音浑厚，人声清晰"),
            ("IPX5 sweat and water resistance", "IPX5防汗防水"),
        ],
        tags: &["bluetooth", "wireless", "audio", "noise-cancelling"],
        whole_titles: false,
    },
    Category {
        path: "books/scifi",
        colour: "#0ea5e9",
        brands: &[
            "Lin Wei",
            "Ada Moreau",
            "Jonah Reyes",
            "刘星河",
            "Mara Quinn",
            "陈远",
            "Theo Nakamura",
            "Irene Volkova",
        ],
        kinds: &[kind(
            "science fiction novel",
            "科幻小说",
            (29, 89),
            30,
            &[
                "The Silent Nebula",
                "Echoes of the Red Moon",
                "Children of the Drift",
                "The Last Lighthouse on Europa",
                "Gravity's Orchard",
                "A Map of Cold Stars",
                "The Clockwork Tide",
                "Orbital Winter",
                "The Glass Archive",
                "Signal from Kepler Deep",
                "The Iron Monsoon",
                "Salt and Starlight",
                "The Hollow Sun",
                "Beneath the Ring City",
                "The Quiet Machine",
                "Heirs of the Long Voyage",
                "The Seventh Relay",
                "Dust of Andromeda",
                "The Cartographer of Mars",
                "Low Orbit Lullaby",
                "沉默的星云",
                "群星之门",
                "流浪星环",
                "深空回声",
                "火星制图师",
                "时间之河",
                "最后的灯塔",
                "银河遗民",
                "量子花园",
                "星海孤舟",
            ],
        )],
        phrases: &[
            (
                "a gripping science fiction novel about first contact",
                "关于第一次接触的硬科幻小说",
            ),
            (
                "space opera aboard an interstellar colony ship",
                "星际殖民飞船上的太空歌剧",
            ),
            (
                "time travel, artificial intelligence and the fate of humanity",
                "时间旅行、人工智能与人类命运",
            ),
            ("award-winning hard science fiction", "获奖硬科幻作品"),
            ("paperback, 400 pages", "平装，400页"),
        ],
        tags: &["science-fiction", "novel", "space", "paperback"],
        whole_titles: true,
    },
    Category {
        path: "books/cooking",
        colour: "#f59e0b",
        brands: &[
            "Mei Chen",
            "Luca Bianchi",
            "王小厨",
            "Sofia Ortega",
            "Hannah Park",
            "李师傅",
        ],
        kinds: &[kind(
            "cookbook",
            "菜谱",
            (39, 129),
            22,
            &[
                "Everyday Sichuan Kitchen",
                "Dim Sum at Home",
                "The Weeknight Wok",
                "Simple Sourdough",
                "Noodles from Scratch",
                "The Vegetable Table",
                "Dumplings for Everyone",
                "One-Pot Family Dinners",
                "The Tea Lover's Cookbook",
                "Baking Bread Step by Step",
                "Fast Healthy Lunches",
                "The Hotpot Handbook",
                "Mediterranean Home Cooking",
                "Rice Cooker Recipes",
                "家常川菜100道",
                "粤式点心入门",
                "一人食快手菜",
                "烘焙新手指南",
                "中华面点大全",
                "减脂餐食谱",
                "砂锅炖汤",
                "下饭家常菜",
            ],
        )],
        phrases: &[
            ("step-by-step recipes with photos", "图文步骤详解"),
            ("home cooking for the whole family", "适合全家的家常菜"),
            ("easy recipes for beginners", "新手也能轻松上手"),
            (
                "seasonal ingredients and healthy eating",
                "时令食材，健康饮食",
            ),
            ("hardcover cookbook", "精装菜谱"),
        ],
        tags: &["cookbook", "recipes", "home-cooking"],
        whole_titles: true,
    },
    Category {
        path: "home/kitchen",
        colour: "#10b981",
        brands: &[
            "HearthCo",
            "Zhiyun 智云",
            "Jadeware 玉器坊",
            "Kitchara",
            "Mugen",
        ],
        kinds: &[
            kind(
                "electric kettle",
                "电热水壶",
                (79, 399),
                7,
                &[
                    "1.7L",
                    "1.5L glass",
                    "temperature control",
                    "stainless steel",
                ],
            ),
            kind(
                "ceramic teapot",
                "陶瓷茶壶",
                (59, 399),
                7,
                &["celadon", "white porcelain", "Yixing clay", "600ml"],
            ),
            kind(
                "tea cup set",
                "茶杯套装",
                (39, 199),
                5,
                &["6 cups", "celadon", "gift box"],
            ),
            kind(
                "chef knife",
                "厨师刀",
                (99, 599),
                5,
                &["8-inch", "Damascus", "cleaver"],
            ),
            kind(
                "rice cooker",
                "电饭煲",
                (199, 999),
                5,
                &["3L", "5L IH", "mini"],
            ),
            kind(
                "wok",
                "炒锅",
                (89, 499),
                5,
                &["carbon steel", "non-stick 32cm", "cast iron"],
            ),
        ],
        phrases: &[
            ("food-grade stainless steel", "食品级不锈钢"),
            ("easy to clean and dishwasher safe", "易清洗，可洗碗机"),
            ("perfect for green tea and oolong", "适合冲泡绿茶和乌龙茶"),
            ("gift box packaging", "礼盒包装"),
            ("a modern home kitchen essential", "现代家居厨房必备"),
        ],
        tags: &["kitchen", "home", "tea", "cookware"],
        whole_titles: false,
    },
    Category {
        path: "fashion/shoes",
        colour: "#ef4444",
        brands: &[
            "Stride",
            "Lightfoot 轻足",
            "Northpeak",
            "Urbanwalk",
            "Kestrel",
        ],
        kinds: &[
            kind(
                "running shoes",
                "跑步鞋",
                (299, 999),
                9,
                &["Pace 3", "Cloud Lite", "Marathon Pro", "Trail"],
            ),
            kind(
                "sneakers",
                "休闲板鞋",
                (199, 699),
                7,
                &["Classic", "Low White", "Canvas", "Retro"],
            ),
            kind(
                "leather boots",
                "皮靴",
                (399, 1299),
                4,
                &["Chelsea", "Ankle", "Winter"],
            ),
            kind(
                "sandals",
                "凉鞋",
                (79, 299),
                4,
                &["Slide", "Sport", "Beach"],
            ),
            kind(
                "sports socks",
                "运动袜",
                (29, 79),
                4,
                &["3 pairs", "5 pairs", "cushioned"],
            ),
        ],
        phrases: &[
            ("breathable mesh upper", "透气网面"),
            ("cushioned sole for all-day comfort", "缓震鞋底，久穿舒适"),
            ("sizes 35 to 45", "尺码35-45"),
            ("lightweight and non-slip", "轻便防滑"),
            (
                "for running, the gym and everyday wear",
                "跑步、健身、日常皆宜",
            ),
        ],
        tags: &["shoes", "comfort", "sport", "casual"],
        whole_titles: false,
    },
    Category {
        path: "sports/outdoor",
        colour: "#84cc16",
        brands: &[
            "Northpeak",
            "Trailborn",
            "Kestrel",
            "Summit 峰顶",
            "Campfire",
        ],
        kinds: &[
            kind(
                "camping tent",
                "帐篷",
                (299, 1999),
                6,
                &["2-person", "4-person", "ultralight"],
            ),
            kind(
                "sleeping bag",
                "睡袋",
                (199, 899),
                5,
                &["down", "3-season", "mummy"],
            ),
            kind(
                "hiking backpack",
                "登山包",
                (199, 1299),
                6,
                &["40L", "60L", "daypack 25L"],
            ),
            kind(
                "trekking poles",
                "登山杖",
                (99, 399),
                4,
                &["carbon", "aluminium", "folding"],
            ),
            kind(
                "headlamp",
                "头灯",
                (49, 199),
                4,
                &["300 lumen", "rechargeable"],
            ),
            kind(
                "hiking boots",
                "登山鞋",
                (399, 1499),
                4,
                &["waterproof mid", "low trail"],
            ),
        ],
        phrases: &[
            ("waterproof and windproof", "防水防风"),
            ("lightweight for hiking and camping", "轻量化，适合徒步露营"),
            ("durable ripstop nylon", "耐磨防撕裂尼龙"),
            ("packs small for travel", "收纳小巧便携"),
            ("for three-season outdoor adventures", "三季户外探险"),
        ],
        tags: &["outdoor", "camping", "hiking", "waterproof"],
        whole_titles: false,
    },
    Category {
        path: "beauty/skincare",
        colour: "#ec4899",
        brands: &["Petalia 花语", "Dewlab", "Aurae", "Mizuha", "Clearleaf"],
        kinds: &[
            kind(
                "facial cleanser",
                "洁面乳",
                (49, 199),
                6,
                &["amino acid", "foaming", "gentle"],
            ),
            kind(
                "hydrating toner",
                "保湿爽肤水",
                (69, 299),
                5,
                &["rose", "200ml", "calming"],
            ),
            kind(
                "vitamin C serum",
                "精华液",
                (129, 599),
                6,
                &["30ml", "brightening", "night repair"],
            ),
            kind(
                "moisturizer",
                "面霜",
                (99, 499),
                6,
                &["50g", "oil-free", "rich"],
            ),
            kind(
                "sunscreen SPF50",
                "防晒霜",
                (79, 259),
                5,
                &["PA++++", "light fluid", "mineral"],
            ),
            kind(
                "sheet mask set",
                "面膜",
                (59, 199),
                4,
                &["10 pack", "hydrating", "soothing"],
            ),
        ],
        phrases: &[
            ("hyaluronic acid for deep hydration", "玻尿酸深层补水"),
            ("suitable for sensitive skin", "敏感肌适用"),
            ("fragrance-free and gentle", "无香精，温和不刺激"),
            ("brightening and anti-aging", "提亮肤色，抗初老"),
            ("dermatologist tested", "皮肤科测试"),
        ],
        tags: &["skincare", "hydrating", "sensitive-skin", "beauty"],
        whole_titles: false,
    },
    Category {
        path: "toys/building",
        colour: "#f97316",
        brands: &["Brickly", "BuildCo 积木坊", "Pixelblock", "Tinkerton"],
        kinds: &[
            kind(
                "city building set",
                "城市积木套装",
                (99, 899),
                7,
                &["fire station", "police station", "train station", "harbour"],
            ),
            kind(
                "space building set",
                "太空积木",
                (149, 1299),
                6,
                &["rocket", "moon base", "space shuttle"],
            ),
            kind(
                "castle building set",
                "城堡积木",
                (199, 999),
                5,
                &["dragon tower", "royal castle"],
            ),
            kind(
                "minifigure pack",
                "人仔套装",
                (39, 129),
                4,
                &["series 1", "astronauts", "knights"],
            ),
            kind(
                "brick storage box",
                "积木收纳盒",
                (49, 149),
                3,
                &["large", "stackable"],
            ),
        ],
        phrases: &[
            ("compatible with major brick brands", "兼容主流积木"),
            ("for ages 6 and up", "适合6岁以上"),
            (
                "hundreds of pieces with illustrated instructions",
                "数百颗粒，附图纸说明",
            ),
            ("a great gift for kids", "儿童礼物首选"),
            ("builds creativity and motor skills", "锻炼创造力和动手能力"),
        ],
        tags: &["building-blocks", "kids", "gift", "stem"],
        whole_titles: false,
    },
];

/// Kinds bought together: buying the first often brings the second into the basket.
const BOUGHT_WITH: &[(&str, &str)] = &[
    ("smartphone", "phone case"),
    ("smartphone", "fast charger"),
    ("smartphone", "screen protector"),
    ("rugged phone", "fast charger"),
    ("senior phone", "phone case"),
    ("power bank", "charging cable"),
    ("wireless earbuds", "earbud case"),
    ("electric kettle", "ceramic teapot"),
    ("ceramic teapot", "tea cup set"),
    ("cookbook", "wok"),
    ("cookbook", "chef knife"),
    ("rice cooker", "cookbook"),
    ("running shoes", "sports socks"),
    ("sneakers", "sports socks"),
    ("hiking boots", "sports socks"),
    ("camping tent", "sleeping bag"),
    ("hiking backpack", "trekking poles"),
    ("headlamp", "camping tent"),
    ("facial cleanser", "hydrating toner"),
    ("vitamin C serum", "sunscreen SPF50"),
    ("moisturizer", "sheet mask set"),
    ("city building set", "minifigure pack"),
    ("space building set", "minifigure pack"),
    ("castle building set", "brick storage box"),
];

/// Share of built-in products that are out of stock.
const UNAVAILABLE_SHARE: f64 = 0.08;

/// Share of non-book products listed under their Chinese name.
const CHINESE_TITLE_SHARE: f64 = 0.3;

/// The built-in catalog: about 290 products in ten categories (see `CATEGORIES`).
pub fn builtin() -> Catalog {
    let mut rng = StdRng::seed_from_u64(CATALOG_SEED);
    let mut products = Vec::new();
    let mut kinds: Vec<&'static str> = Vec::new();
    let mut titles = std::collections::HashSet::new();
    for category in CATEGORIES {
        let leaf = category.path.rsplit('/').next().unwrap_or(category.path);
        let letter = leaf.chars().next().map_or('?', |l| l.to_ascii_uppercase());
        let image_url = tile(category.colour, letter);
        let centroid = random_unit(&mut rng);
        let mut n = 0;
        for kind in category.kinds {
            // Brands rotate from a random start, so brand and variant pairs rarely repeat.
            let first_brand = rng.random_range(0..category.brands.len());
            for k in 0..kind.count {
                n += 1;
                let brand = category.brands[(first_brand + k) % category.brands.len()];
                let variant = kind.variants[k % kind.variants.len()];
                let chinese = if category.whole_titles {
                    !variant.is_ascii()
                } else {
                    rng.random_bool(CHINESE_TITLE_SHARE)
                };
                let mut title = match (category.whole_titles, chinese) {
                    (true, _) => variant.to_owned(),
                    (false, true) => format!("{brand} {}{variant}", kind.zh),
                    (false, false) => format!("{brand} {} {variant}", title_case(kind.en)),
                };
                while !titles.insert(title.clone()) {
                    title.push_str(" II");
                }
                let description = describe(category, kind, chinese, &mut rng);
                let mut tags: Vec<String> = category
                    .tags
                    .iter()
                    .filter(|_| rng.random_bool(0.6))
                    .map(|t| (*t).to_owned())
                    .collect();
                tags.push(kind.en.replace(' ', "-"));
                let available = !rng.random_bool(UNAVAILABLE_SHARE);
                // The tiles of a category look alike, so their embeddings do too.
                let noise = random_unit(&mut rng);
                let embedding = centroid.iter().zip(&noise).map(|(a, b)| a + 0.35 * b);
                products.push(Product {
                    item_id: format!("demo-{leaf}-{n:03}"),
                    title,
                    description,
                    category: category.path.to_owned(),
                    brand: brand.to_owned(),
                    tags,
                    price_minor: price(kind.yuan, &mut rng),
                    available,
                    stock: if available {
                        rng.random_range(5..500)
                    } else {
                        0
                    },
                    image_url: image_url.clone(),
                    embedding: normalise(embedding.collect()),
                    keywords: vec![kind.en.to_owned(), kind.zh.to_owned()],
                });
                kinds.push(kind.en);
            }
        }
    }
    // Popularity is a fixed random order: the Zipf law then makes a few items best sellers.
    let popularity: Vec<f64> = products.iter().map(|_| rng.random::<f64>()).collect();
    let companions = builtin_companions(&products, &kinds, &popularity);
    Catalog::new(products, &popularity, companions)
}

/// For each product: one item of each kind it is bought with (same brand when there is one,
/// else the most popular), and for books up to two others by the same author.
fn builtin_companions(products: &[Product], kinds: &[&str], popularity: &[f64]) -> Vec<Vec<usize>> {
    let best = |candidates: &mut dyn Iterator<Item = usize>, brand: &str| {
        candidates.max_by(|&a, &b| {
            let key = |i: usize| (products[i].brand == brand, popularity[i]);
            let (ba, pa) = key(a);
            let (bb, pb) = key(b);
            ba.cmp(&bb).then(pa.total_cmp(&pb))
        })
    };
    (0..products.len())
        .map(|i| {
            let product = &products[i];
            let mut list = Vec::new();
            for (_, with) in BOUGHT_WITH.iter().filter(|(k, _)| *k == kinds[i]) {
                let mut candidates = (0..products.len()).filter(|&j| kinds[j] == *with && j != i);
                if let Some(j) = best(&mut candidates, &product.brand) {
                    list.push(j);
                }
            }
            if product.category.starts_with("books/") {
                let mut same_author: Vec<usize> = (0..products.len())
                    .filter(|&j| {
                        j != i
                            && products[j].brand == product.brand
                            && products[j].category == product.category
                    })
                    .collect();
                same_author.sort_by(|&a, &b| popularity[b].total_cmp(&popularity[a]));
                list.extend(same_author.into_iter().take(2));
            }
            list
        })
        .collect()
}

/// A description from the kind and three of the category's shared phrases.
fn describe(category: &Category, kind: &Kind, chinese: bool, rng: &mut StdRng) -> String {
    let mut picked: Vec<usize> = (0..category.phrases.len()).collect();
    // A partial Fisher-Yates: the first three are a random choice.
    for i in 0..3.min(picked.len()) {
        let j = rng.random_range(i..picked.len());
        picked.swap(i, j);
    }
    let phrases = picked.iter().take(3).map(|&i| category.phrases[i]);
    if chinese {
        let zh: Vec<&str> = phrases.map(|(_, zh)| zh).collect();
        format!("{}：{}。{}.", kind.zh, zh.join("，"), title_case(kind.en))
    } else {
        let en: Vec<&str> = phrases.map(|(en, _)| en).collect();
        format!("{}: {}.", title_case(kind.en), en.join("; "))
    }
}

/// A price in the range, ending in 9 yuan as shops like it, in fen.
fn price((low, high): (u32, u32), rng: &mut StdRng) -> i64 {
    let yuan = i64::from(rng.random_range(low..=high.max(low)));
    let yuan = (yuan / 10 * 10 + 9).max(9);
    yuan * 100
}

fn title_case(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn random_unit(rng: &mut StdRng) -> Vec<f32> {
    normalise(
        (0..EMBEDDING_DIMS)
            .map(|_| rng.random::<f32>() * 2.0 - 1.0)
            .collect(),
    )
}

fn normalise(v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.into_iter().map(|x| x / norm).collect()
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_is_realistic_and_stable() {
        let catalog = builtin();
        let again = builtin();
        assert_eq!(catalog.products, again.products, "same catalog every run");
        let n = catalog.products.len();
        assert!((250..=400).contains(&n), "{n} products");
        assert_eq!(catalog.categories.len(), CATEGORIES.len());
        let ids: std::collections::HashSet<&str> = catalog
            .products
            .iter()
            .map(|p| p.item_id.as_str())
            .collect();
        assert_eq!(ids.len(), n, "ids are unique");
        let unavailable = catalog.products.iter().filter(|p| !p.available).count();
        assert!(
            unavailable > 0 && unavailable < n / 5,
            "{unavailable} unavailable"
        );
        let chinese = catalog
            .products
            .iter()
            .filter(|p| !p.title.is_ascii())
            .count();
        assert!(chinese > n / 10, "{chinese} Chinese titles");
        assert!(
            catalog
                .products
                .iter()
                .any(|p| p.title.contains("无线蓝牙耳机"))
        );
        for p in &catalog.products {
            assert!(p.price_minor > 0 && p.price_minor % 100 == 0, "{p:?}");
            assert!(p.image_url.starts_with("data:image/svg+xml;base64,"));
            assert_eq!(p.embedding.len(), EMBEDDING_DIMS);
        }
    }

    #[test]
    fn companions_follow_the_bought_with_pairs() {
        let catalog = builtin();
        let phone = catalog
            .products
            .iter()
            .position(|p| p.keywords[0] == "smartphone")
            .unwrap();
        let companions: Vec<&str> = catalog.companions[phone]
            .iter()
            .map(|&j| catalog.products[j].keywords[0].as_str())
            .collect();
        assert_eq!(
            companions,
            ["phone case", "fast charger", "screen protector"]
        );
        let kettle = catalog
            .products
            .iter()
            .position(|p| p.keywords[0] == "electric kettle")
            .unwrap();
        assert_eq!(
            catalog.products[catalog.companions[kettle][0]].keywords[0],
            "ceramic teapot"
        );
    }

    #[test]
    fn popularity_is_zipf_skewed() {
        let catalog = builtin();
        let mut rng = StdRng::seed_from_u64(1);
        let mut counts = std::collections::HashMap::new();
        for _ in 0..10_000 {
            *counts
                .entry(catalog.pick(0, &mut rng).unwrap())
                .or_insert(0) += 1;
        }
        let mut counts: Vec<i32> = counts.into_values().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        // The best seller sells several times what the median item does.
        assert!(counts[0] > 4 * counts[counts.len() / 2], "{counts:?}");
    }

    #[test]
    fn tiles_are_svg_data_urls() {
        let url = tile("#123456", 'P');
        let body = url.trim_start_matches("data:image/svg+xml;base64,");
        let svg = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.contains("fill='#123456'") && svg.contains(">P</text>"));
    }
}
