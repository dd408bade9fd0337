"""The patient portal: pages and scripts every member node serves to patients."""
