//! The shop's data: products with a price and a stock, customers with a
//! credit and an address, and the orders a run places. Everything is
//! derived from a seed and the sizes alone, so that every process of a
//! multi-process run starts from the same data without sharing a database.

use crate::ecommerce::{Address, PlaceOrder};
use choreo_runtime::types::Decimal;
use serde::{Deserialize, Serialize};

/// What the data is derived from. Every process of one deployment must be
/// given the same values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
pub struct DataOptions {
    /// The seed of the shop's data and of the orders placed.
    #[arg(long, default_value_t = 8, value_name = "S")]
    pub seed: u64,
    /// How many customers there are (user ids 1..=U).
    #[arg(long, default_value_t = 100, value_name = "U", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub users: u64,
    /// How many products there are (product ids 1..=P).
    #[arg(long, default_value_t = 50, value_name = "P", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub products: u64,
}

impl Default for DataOptions {
    fn default() -> Self {
        DataOptions {
            seed: 8,
            users: 100,
            products: 50,
        }
    }
}

/// A product for sale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// Its id (from 1).
    pub id: u64,
    /// The price of one unit.
    pub price: Decimal,
    /// Units in stock when the shop opens.
    pub stock: u32,
}

/// A customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// Their id (from 1).
    pub id: u64,
    /// What they may spend in all.
    pub credit: Decimal,
    /// Where their orders go.
    pub address: Address,
}

/// Every product and customer of the shop.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalogue {
    /// What it was derived from.
    pub options: DataOptions,
    /// Products by id − 1.
    pub products: Vec<Product>,
    /// Customers by id − 1.
    pub customers: Vec<Customer>,
}

/// splitmix64: tiny, fast, and the same on every machine, which is all the
/// data needs (nothing here is secret).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`, on its own `stream` (so that the products,
    /// the customers and the orders do not shift when one of them grows).
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        r.next_u64();
        r
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

const CITIES: &[(&str, &str)] = &[
    ("Lyon", "69001"),
    ("Zurich", "8001"),
    ("Porto", "4000-001"),
    ("Leeds", "LS1 1AA"),
    ("Graz", "8010"),
    ("Turku", "20100"),
];
const STREETS: &[&str] = &["Main Street", "Station Road", "Rue Neuve", "Hauptgasse"];

/// The largest quantity a generated order asks for (a bulk order).
pub const MAX_QUANTITY: u32 = 8;

impl Catalogue {
    /// The shop derived from `options`.
    ///
    /// Prices are 5.00 to 99.99; stock 20 to 80 units, credit 200.00 to
    /// 1,500.00: against the default 1,000 orders over 100 customers and
    /// 50 products (ten orders of about 100.00 per customer, twenty orders
    /// of about two units per product) most orders complete, some customers
    /// run out of credit and some products out of stock.
    pub fn generate(options: DataOptions) -> Self {
        let mut r = Rng::new(options.seed, 1);
        let products = (1..=options.products)
            .map(|id| Product {
                id,
                price: Decimal::new(r.range(500, 9_999) as i64, 2),
                stock: r.range(20, 80) as u32,
            })
            .collect();
        let mut r = Rng::new(options.seed, 2);
        let customers = (1..=options.users)
            .map(|id| {
                let (city, zip) = CITIES[r.range(0, CITIES.len() as u64 - 1) as usize];
                let street = STREETS[r.range(0, STREETS.len() as u64 - 1) as usize];
                Customer {
                    id,
                    credit: Decimal::new(r.range(200, 1_500) as i64 * 100, 2),
                    address: Address {
                        street: format!("{} {street}", r.range(1, 120)),
                        city: city.into(),
                        zip: zip.into(),
                    },
                }
            })
            .collect();
        Catalogue {
            options,
            products,
            customers,
        }
    }

    /// The product `id`, if there is one.
    pub fn product(&self, id: u64) -> Option<&Product> {
        let i = usize::try_from(id.checked_sub(1)?).ok()?;
        self.products.get(i)
    }

    /// The customer `id`, if there is one.
    pub fn customer(&self, id: u64) -> Option<&Customer> {
        let i = usize::try_from(id.checked_sub(1)?).ok()?;
        self.customers.get(i)
    }

    /// What `quantity` units of `product` cost, if it exists.
    pub fn price(&self, product: u64, quantity: u32) -> Option<Decimal> {
        self.product(product)
            .map(|p| p.price * Decimal::from(quantity))
    }

    /// Why `order` cannot be taken, if it cannot: an unknown customer or
    /// product, or nothing ordered. Checked at the door (a `400`) and again
    /// by the Orders service for commands that do not come through it.
    pub fn validate(&self, order: &PlaceOrder) -> Result<(), String> {
        if self.customer(order.user_id).is_none() {
            return Err(format!(
                "there is no customer {} (customers are 1 to {})",
                order.user_id,
                self.customers.len()
            ));
        }
        if self.product(order.product_id).is_none() {
            return Err(format!(
                "there is no product {} (products are 1 to {})",
                order.product_id,
                self.products.len()
            ));
        }
        if order.quantity == 0 {
            return Err("the quantity must be at least 1".into());
        }
        Ok(())
    }

    /// The `n` orders a run places: random customers and products, mostly
    /// one to three units, now and then a bulk order.
    pub fn orders(&self, n: usize) -> Vec<PlaceOrder> {
        let mut r = Rng::new(self.options.seed, 3);
        (0..n)
            .map(|_| {
                let user_id = r.range(1, self.options.users);
                let product_id = r.range(1, self.options.products);
                let quantity = if r.range(0, 19) == 0 {
                    r.range(4, u64::from(MAX_QUANTITY)) as u32
                } else {
                    r.range(1, 3) as u32
                };
                let ship_to = self
                    .customer(user_id)
                    .map(|c| c.address.clone())
                    .unwrap_or_else(|| Address {
                        street: String::new(),
                        city: String::new(),
                        zip: String::new(),
                    });
                PlaceOrder {
                    user_id,
                    product_id,
                    quantity,
                    ship_to,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_same_options_give_the_same_shop_and_orders() {
        let o = DataOptions::default();
        assert_eq!(Catalogue::generate(o), Catalogue::generate(o));
        let c = Catalogue::generate(o);
        assert_eq!(c.orders(50), c.orders(50));
        assert_eq!(c.orders(50)[..10], c.orders(10)[..]);
        let other = Catalogue::generate(DataOptions { seed: 9, ..o });
        assert_ne!(c.products, other.products);
    }

    #[test]
    fn every_generated_order_is_valid() {
        let c = Catalogue::generate(DataOptions::default());
        for o in c.orders(500) {
            c.validate(&o).unwrap();
            assert!(c.price(o.product_id, o.quantity).unwrap() > Decimal::ZERO);
        }
        let mut bad = c.orders(1).remove(0);
        bad.product_id = 51;
        assert!(c.validate(&bad).unwrap_err().contains("no product 51"));
        assert!(c.product(0).is_none());
    }
}
