//! Tokenizer throughput on mixed Chinese/English product text, the catalog-build workload.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Product titles and descriptions in the mix the catalog has: Chinese, English, both.
const SAMPLES: [&str; 6] = [
    "Apple iPhone 15 Pro Max 256GB 原色钛金属 支持移动联通电信5G 双卡双待手机",
    "小米Redmi Note 13 5G 1亿像素 超细四窄边OLED直屏 5000mAh大电量 8GB+256GB 子夜黑",
    "Wireless Bluetooth Earbuds, 40H Playtime, IPX7 Waterproof, Noise Cancelling Headphones",
    "这款蓝牙耳机音质清晰，降噪效果很好，续航时间长，佩戴舒适，适合运动和通勤使用。",
    "Organic cotton T-shirt for men — breathable, pre-shrunk; machine washable at 30°C.",
    "【官方旗舰店】三只松鼠坚果大礼包 每日坚果 混合果仁 休闲零食 送礼佳品 750g/盒",
];

fn bench_tokenize(c: &mut Criterion) {
    tailor_text::warm_up();
    let mut group = c.benchmark_group("tokenize");
    // One "catalog item" = a title plus a description, so 25k items ≈ 25k iterations.
    let item = format!("{} {}", SAMPLES[1], SAMPLES[3]);
    group.throughput(Throughput::Bytes(item.len() as u64));
    group.bench_function("zh_item", |b| {
        b.iter(|| tailor_text::tokenize(black_box(&item)))
    });
    let item = format!("{} {}", SAMPLES[2], SAMPLES[4]);
    group.throughput(Throughput::Bytes(item.len() as u64));
    group.bench_function("en_item", |b| {
        b.iter(|| tailor_text::tokenize(black_box(&item)))
    });
    let mixed = SAMPLES.join(" ");
    group.throughput(Throughput::Bytes(mixed.len() as u64));
    group.bench_function("mixed_6_titles", |b| {
        b.iter(|| tailor_text::tokenize(black_box(&mixed)))
    });
    group.finish();

    // The catalog-build workload itself: 25k title + description pairs, single-threaded.
    let catalog: Vec<String> = (0..25_000)
        .map(|i| {
            let n = SAMPLES.len();
            format!("{} {} #{i}", SAMPLES[i % n], SAMPLES[(i / n + 1) % n])
        })
        .collect();
    let mut group = c.benchmark_group("catalog");
    group.sample_size(10);
    group.bench_function("25k_items", |b| {
        b.iter(|| {
            catalog
                .iter()
                .map(|item| tailor_text::tokenize(black_box(item)).len())
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_tokenize);
criterion_main!(benches);
