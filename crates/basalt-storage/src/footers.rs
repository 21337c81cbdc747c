//! A node-wide cache of parsed segment footers *with* their page indexes.
//!
//! DataFusion's `CachedParquetFileReaderFactory` caches footers, but its scan asks for the
//! footer without the page index and then reads and parses the page index itself on every
//! scan, uncached: for a pruned scan that reads a handful of blocks this was most of the work
//! (docs/benchmarks.md, "Pruning"). Segments always carry a page index (page statistics are
//! written for every column), so a reader made here always asks for it: the first scan of a
//! segment parses both and caches them, later scans find both in the cache.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::{
    CachedParquetFileReaderFactory, ParquetFileReaderFactory,
};
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::object_store::ObjectStore;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::future::BoxFuture;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};

/// Makes segment readers whose metadata comes from (and goes to) the node's footer cache,
/// page index included.
#[derive(Debug)]
pub(crate) struct SegmentReaderFactory {
    inner: CachedParquetFileReaderFactory,
}

impl SegmentReaderFactory {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, cache: Arc<FileMetadataCache>) -> Self {
        SegmentReaderFactory {
            inner: CachedParquetFileReaderFactory::new(store, cache),
        }
    }
}

impl ParquetFileReaderFactory for SegmentReaderFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> datafusion::error::Result<Box<dyn AsyncFileReader + Send>> {
        let inner = self
            .inner
            .create_reader(partition_index, file, metadata_size_hint, metrics)?;
        Ok(Box::new(WithPageIndex {
            inner,
            options: None,
        }))
    }
}

/// Delegates to the cached reader, asking for the page index whatever the caller asked.
struct WithPageIndex {
    inner: Box<dyn AsyncFileReader + Send>,
    options: Option<ArrowReaderOptions>,
}

impl AsyncFileReader for WithPageIndex {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        self.inner.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        self.inner.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        self.options = Some(
            options
                .cloned()
                .unwrap_or_default()
                .with_page_index_policy(PageIndexPolicy::Optional),
        );
        self.inner.get_metadata(self.options.as_ref())
    }
}
