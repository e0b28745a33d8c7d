"""Protocol connectors: each subpackage turns devices into PointBatches and WaveformBlocks."""
