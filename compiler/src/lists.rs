//! Lists of ids, one per index, stored flat: one vector of items and one
//! of offsets, instead of a vector per list. The flow tables and the
//! dominator trees of the checks hold a list per message or node; on a
//! large spec a separate allocation per list cost more than the lists.

/// Lists of items, one per index, stored in two flat vectors.
#[derive(Debug, Clone)]
pub(crate) struct Lists<T> {
    /// List `i` is `items[starts[i]..starts[i + 1]]`.
    starts: Vec<u32>,
    items: Vec<T>,
}

impl<T> Default for Lists<T> {
    fn default() -> Self {
        Lists {
            starts: vec![0],
            items: Vec::new(),
        }
    }
}

impl<T: Copy> Lists<T> {
    /// No lists yet, with room for `lists` lists of `items` items in all.
    pub fn with_capacity(lists: usize, items: usize) -> Self {
        let mut starts = Vec::with_capacity(lists + 1);
        starts.push(0);
        Lists {
            starts,
            items: Vec::with_capacity(items),
        }
    }

    /// Appends the next list.
    pub fn push(&mut self, items: impl IntoIterator<Item = T>) {
        self.items.extend(items);
        self.starts.push(offset(self.items.len()));
    }

    /// `n` lists filled from `(list, item)` pairs, each list keeping its
    /// items in the order given (a counting sort: two passes over the
    /// pairs).
    pub fn grouped(n: usize, pairs: impl Iterator<Item = (usize, T)> + Clone) -> Self {
        let mut starts = vec![0u32; n + 1];
        let mut len = 0;
        for (list, _) in pairs.clone() {
            starts[list + 1] += 1;
            len += 1;
        }
        for i in 0..n {
            starts[i + 1] += starts[i];
        }
        let Some((_, filler)) = pairs.clone().next() else {
            return Lists {
                starts,
                items: Vec::new(),
            };
        };
        let mut next: Vec<u32> = starts[..n].to_vec();
        let mut items = vec![filler; len];
        for (list, item) in pairs {
            items[next[list] as usize] = item;
            next[list] += 1;
        }
        Lists { starts, items }
    }

    /// How many lists there are.
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// List `i`; empty past the last.
    pub fn get(&self, i: usize) -> &[T] {
        match (self.starts.get(i), self.starts.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.items[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// A table position as stored: specs are far smaller than 4 billion ids.
pub(crate) fn offset(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_lists_keep_the_order_given() {
        let lists = Lists::grouped(
            4,
            [(2, 'a'), (0, 'b'), (2, 'c'), (3, 'd'), (2, 'e')].into_iter(),
        );
        assert_eq!(lists.get(0), &['b']);
        assert!(lists.get(1).is_empty());
        assert_eq!(lists.get(2), &['a', 'c', 'e']);
        assert_eq!(lists.get(3), &['d']);
        assert!(lists.get(4).is_empty());
    }

    #[test]
    fn pushed_lists_and_the_empty_default() {
        let mut lists = Lists::with_capacity(3, 3);
        lists.push([1, 2]);
        lists.push([]);
        lists.push([3]);
        assert_eq!(lists.get(0), &[1, 2]);
        assert!(lists.get(1).is_empty());
        assert_eq!(lists.get(2), &[3]);
        assert!(Lists::<u8>::default().get(0).is_empty());
    }
}
